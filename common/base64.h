/* base64.h -- standard base64 (RFC 4648), for images in frames and data URLs. */
#ifndef AIMSG_BASE64_H
#define AIMSG_BASE64_H

#include <stddef.h>
#include "buf.h"

int base64_encode(struct buf *out, const unsigned char *in, size_t len);
/* Decodes into out (appending). Whitespace is skipped; padding optional.
 * Returns -1 on an invalid character or length. */
int base64_decode(struct buf *out, const char *in, size_t len);

#endif
