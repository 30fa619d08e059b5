/* fuzz_ws_frame.c -- libFuzzer harness: a WebSocket client frame turned into
 * a job (common/message.c client_message_parse, used by ws-push/client.c).
 * Checks that whatever is accepted obeys the message rules. */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "image.h"
#include "message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGE 200
#define MAX_IMAGE 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct client_message m;
    const char *why = client_message_parse(&m, (const char *)data, size, MAX_MESSAGE, MAX_IMAGE);
    if (!why) {
        assert(m.text.len <= MAX_MESSAGE);
        assert(message_utf8_valid(m.text.data, m.text.len));
        assert(!memchr(m.text.data, '\0', m.text.len));
        if (m.kind == JOB_IMAGE) {
            assert(m.image.len > 0 && m.image.len <= MAX_IMAGE);
            assert(m.mime && image_mime((const unsigned char *)m.image.data, m.image.len) == m.mime);
        } else {
            assert(m.kind == JOB_TEXT && m.text.len > 0);
        }
    }
    client_message_free(&m);
    return 0;
}
