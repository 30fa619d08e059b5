/* image.h -- recognises the accepted image formats by their magic bytes. */
#ifndef AIMSG_IMAGE_H
#define AIMSG_IMAGE_H

#include <stddef.h>

/* "image/jpeg", "image/png", "image/gif", "image/webp", or NULL. */
const char *image_mime(const unsigned char *p, size_t len);

#endif
