/* test_message.c -- the message rules shared by fcgi-api and ws-push. */
#define TEST_NAME "message"
#include "check.h"
#include "message.h"

#define T(s) s, sizeof(s) - 1

static const char *frame(struct client_message *m, const char *json)
{
    return client_message_parse(m, json, strlen(json), 100, 2048);
}

static void test_utf8(void)
{
    CHECK("ASCII and CJK are UTF-8", message_utf8_valid(T("hi 你好 \xf0\x9f\x98\x80")));
    CHECK("a lone continuation byte is not", !message_utf8_valid(T("a\x80")));
    CHECK("an overlong '/' is not", !message_utf8_valid(T("\xc0\xaf")));
    CHECK("an overlong 3-byte form is not", !message_utf8_valid(T("\xe0\x80\xaf")));
    CHECK("a surrogate is not", !message_utf8_valid(T("\xed\xa0\x80")));
    CHECK("above U+10FFFF is not", !message_utf8_valid(T("\xf4\x90\x80\x80")));
    CHECK("U+10FFFF is", message_utf8_valid(T("\xf4\x8f\xbf\xbf")));
    CHECK("a truncated sequence is not", !message_utf8_valid(T("\xe4\xbd")));
}

static void test_rules(void)
{
    const char *mime;
    CHECK("text accepted", message_check_text(T("hi"), 100) == NULL);
    CHECK("blank text refused", message_check_text(T(" \n\t"), 100) == MSG_CONTENT_EMPTY);
    CHECK("long text refused", message_check_text(T("abcdef"), 5) == MSG_CONTENT_TOO_LONG);
    CHECK("text with NUL refused", message_check_text(T("a\0b"), 100) == MSG_CONTENT_NUL);
    CHECK("question may be empty", message_check_question("", 0, 100) == NULL);
    CHECK("question with invalid UTF-8 refused",
          message_check_question(T("what\xff?"), 100) == MSG_QUESTION_NOT_UTF8);
    CHECK("question with NUL refused",
          message_check_question(T("what\0?"), 100) == MSG_QUESTION_NUL);
    CHECK("long question refused", message_check_question(T("abcdef"), 5) == MSG_QUESTION_TOO_LONG);
    CHECK("PNG accepted", message_check_image(T("\x89PNG\r\n\x1a\nxx"), 100, &mime) == NULL &&
                              !strcmp(mime, "image/png"));
    CHECK("empty image refused", message_check_image("", 0, 100, &mime) == MSG_IMAGE_EMPTY);
    CHECK("large image refused",
          message_check_image(T("GIF89a0123"), 8, &mime) == MSG_IMAGE_TOO_LARGE);
    CHECK("unknown image refused",
          message_check_image(T("hello"), 100, &mime) == MSG_IMAGE_TYPE && mime == NULL);
}

static void test_frames(void)
{
    struct client_message m;
    CHECK("text frame", frame(&m, "{\"type\":\"text\",\"content\":\"hi\"}") == NULL &&
                            m.kind == JOB_TEXT && m.text.len == 2);
    client_message_free(&m);
    /* "R0lGODlhAQABAAAAACw=" is "GIF89a\1\0\1\0\0\0\0,": a GIF by magic bytes */
    CHECK("image frame with question",
          frame(&m, "{\"type\":\"image\",\"content\":\"data:image/gif;base64,R0lGODlhAQABAAAAACw=\","
                    "\"question\":\"q?\"}") == NULL &&
              m.kind == JOB_IMAGE && !strcmp(m.mime, "image/gif") && !strcmp(m.text.data, "q?"));
    client_message_free(&m);
    CHECK("image frame without question",
          frame(&m, "{\"type\":\"image\",\"content\":\"R0lGODlhAQABAAAAACw=\"}") == NULL &&
              m.text.len == 0);
    client_message_free(&m);
    CHECK("question with NUL refused",
          frame(&m, "{\"type\":\"image\",\"content\":\"R0lGODlhAQABAAAAACw=\","
                    "\"question\":\"a\\u0000b\"}") == MSG_QUESTION_NUL);
    client_message_free(&m);
    CHECK("non-string question refused",
          frame(&m, "{\"type\":\"image\",\"content\":\"R0lGODlhAQABAAAAACw=\","
                    "\"question\":7}") == MSG_QUESTION_NOT_STRING);
    client_message_free(&m);
    CHECK("text with NUL refused",
          frame(&m, "{\"type\":\"text\",\"content\":\"a\\u0000\"}") == MSG_CONTENT_NUL);
    client_message_free(&m);
    CHECK("invalid UTF-8 refused", frame(&m, "{\"type\":\"text\",\"content\":\"\xff\"}") ==
                                       MSG_NOT_JSON_OBJECT);
    client_message_free(&m);
    CHECK("missing content named", frame(&m, "{\"type\":\"text\"}") == MSG_CONTENT_MISSING);
    client_message_free(&m);
    CHECK("unknown type named", frame(&m, "{\"type\":\"x\",\"content\":\"a\"}") == MSG_UNKNOWN_TYPE);
    client_message_free(&m);
    CHECK("bad base64 named", frame(&m, "{\"type\":\"image\",\"content\":\"@@@\"}") ==
                                  MSG_IMAGE_NOT_BASE64);
    client_message_free(&m);
    CHECK("data URL without comma named",
          frame(&m, "{\"type\":\"image\",\"content\":\"data:xyz\"}") == MSG_IMAGE_BAD_DATA_URL);
    client_message_free(&m);
}

int main(void)
{
    test_utf8();
    test_rules();
    test_frames();
    return check_failed ? 1 : 0;
}
