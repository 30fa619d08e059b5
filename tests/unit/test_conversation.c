/* test_conversation.c -- conversations and models: the id rule, the keys,
 * a stored turn, what the worker sends of the history (trimmed by turns
 * and bytes), the "conversation" and "model" of a client message, the
 * queued and done frames, and what the enqueue script's replies mean. */
#define TEST_NAME "conversation"
#include "check.h"
#include "config.h"
#include "conversation.h"
#include "enqueue.h"
#include "frame.h"
#include "../../worker/history.h"
#include "message.h"
#include "models.h"

#define ID "0123456789abcdef0123456789abcdef"

static void test_ids(void)
{
    struct keys k;
    struct conversation_keys ck;
    keys_init(&k, "p:");
    CHECK("32 lowercase hex digits are an id", conversation_check(ID, 32) == NULL);
    CHECK("upper case is not", conversation_check("0123456789ABCDEF0123456789abcdef", 32) ==
                                   MSG_CONVERSATION_BAD);
    CHECK("31 digits are not", conversation_check(ID, 31) == MSG_CONVERSATION_BAD);
    char fresh[CONVERSATION_ID_LEN + 1];
    CHECK("a new id is one", conversation_new_id(fresh) == 0 && !conversation_check(fresh, 32));
    CHECK("the keys of a conversation", conversation_keys(&k, ID, &ck) == 0 &&
                                            !strcmp(ck.owner, "p:conv:" ID ":owner") &&
                                            !strcmp(ck.turns, "p:conv:" ID ":turns") &&
                                            !strcmp(ck.queue, "p:conv:" ID ":queue"));
    CHECK("no keys for a bad id", conversation_keys(&k, "../x", &ck) != 0);
    struct buf b = BUF_INIT;
    CHECK("a turn", conversation_turn_json(&b, "1-0", 1, "q\"", 2, "a", 1, 5) == 0);
    CHECK_STR("... as stored",
              "{\"id\":\"1-0\",\"kind\":\"image\",\"question\":\"q\\\"\",\"answer\":\"a\",\"ts\":5}",
              b.data);
    buf_free(&b);
}

/* [[turn, ...]] as the turn script returns it */
static redisReply str_reply(char *s)
{
    return (redisReply){.type = REDIS_REPLY_STRING, .str = s, .len = strlen(s)};
}

static void test_history(void)
{
    char t1[] = "{\"id\":\"1-0\",\"kind\":\"text\",\"question\":\"aaaaaaaaaa\",\"answer\":\"bbbbbbbbbb\",\"ts\":1}";
    char t2[] = "{\"id\":\"2-0\",\"kind\":\"image\",\"question\":\"\",\"answer\":\"cc\",\"ts\":2}";
    char t3[] = "not json";
    char t4[] = "{\"id\":\"4-0\",\"kind\":\"text\",\"question\":\"dd\",\"answer\":\"ee\",\"ts\":4}";
    redisReply e[4] = {str_reply(t1), str_reply(t2), str_reply(t3), str_reply(t4)};
    redisReply *ep[4] = {&e[0], &e[1], &e[2], &e[3]};
    redisReply list = {.type = REDIS_REPLY_ARRAY, .elements = 4, .element = ep};
    redisReply *lp = &list;
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 1, .element = &lp};
    struct history h;
    CHECK("all turns fit", history_from_reply(&h, &r, 10, 1000) == 0 && h.n == 3 && !h.dropped);
    CHECK("... oldest first, the unreadable one skipped",
          h.n == 3 && h.items[0].question_len == 10 && !strcmp(h.items[2].answer, "ee"));
    CHECK("an image turn without a question is sent as the placeholder",
          h.n == 3 && !strcmp(h.items[1].question, HISTORY_IMAGE_TEXT));
    history_free(&h);
    CHECK("max turns keeps the newest", history_from_reply(&h, &r, 1, 1000) == 0 && h.n == 1 &&
                                            !strcmp(h.items[0].question, "dd") && h.dropped);
    history_free(&h);
    size_t two = 4 + strlen(HISTORY_IMAGE_TEXT) + 2;
    CHECK("max bytes drops the oldest whole turns",
          history_from_reply(&h, &r, 10, (long)two) == 0 && h.n == 2 && !strcmp(h.items[1].question, "dd"));
    history_free(&h);
    CHECK("... a byte short, one more",
          history_from_reply(&h, &r, 10, (long)two - 1) == 0 && h.n == 1);
    history_free(&h);
    redisReply zero = {.type = REDIS_REPLY_INTEGER, .integer = 0};
    CHECK("'not your turn' is no history", history_from_reply(&h, &zero, 10, 10) != 0);
    history_free(&h);
}

static const char *frame(struct client_message *m, const char *json)
{
    client_message_free(m);
    return client_message_parse(m, json, strlen(json), 100, 2048);
}

static void test_messages(void)
{
    struct client_message m;
    memset(&m, 0, sizeof(m));
    CHECK("a text without conversation: a new one",
          frame(&m, "{\"type\":\"text\",\"content\":\"a\"}") == NULL && !m.conversation[0] && !m.model[0]);
    CHECK("... null too", frame(&m, "{\"type\":\"text\",\"content\":\"a\",\"conversation\":null}") == NULL &&
                              !m.conversation[0]);
    CHECK("a text naming one", frame(&m, "{\"type\":\"text\",\"content\":\"a\",\"conversation\":\"" ID "\"}") ==
                                   NULL && !strcmp(m.conversation, ID));
    CHECK("a bad one is refused", frame(&m, "{\"type\":\"text\",\"content\":\"a\",\"conversation\":\"x\"}") ==
                                      MSG_CONVERSATION_BAD);
    CHECK("... a number too", frame(&m, "{\"type\":\"text\",\"content\":\"a\",\"conversation\":1}") ==
                                  MSG_CONVERSATION_BAD);
    CHECK("a model is read", frame(&m, "{\"type\":\"text\",\"content\":\"a\",\"model\":\"m\"}") == NULL &&
                                 !strcmp(m.model, "m"));
    CHECK("a model that is no string is refused",
          frame(&m, "{\"type\":\"text\",\"content\":\"a\",\"model\":[]}") == MSG_MODEL_NOT_STRING);
    client_message_free(&m);

    struct config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.ai_model = "solo";
    CHECK("without ai_models, ai_model is the default", !strcmp(models_default(&cfg), "solo"));
    CHECK("... and the only one", !models_check(&cfg, "solo", 4) &&
                                      models_check(&cfg, "other", 5) == MSG_MODEL_UNKNOWN);
    char *items[] = {"a", "bb"};
    cfg.ai_models = (struct config_list){2, items};
    CHECK("with ai_models, the first is the default", !strcmp(models_default(&cfg), "a"));
    CHECK("... each may be asked for", !models_check(&cfg, "bb", 2) && !models_check(&cfg, "a", 1));
    CHECK("... nothing else", models_check(&cfg, "solo", 4) == MSG_MODEL_UNKNOWN &&
                                  models_check(&cfg, "b", 1) == MSG_MODEL_UNKNOWN);
}

static void test_frames_and_replies(void)
{
    struct buf b = BUF_INIT;
    frame_queued(&b, "1-0", ID);
    CHECK_STR("queued names the conversation", "{\"type\":\"queued\",\"id\":\"1-0\",\"conversation\":\"" ID "\"}", b.data);
    frame_queued(&b, "1-0", NULL);
    CHECK_STR("... or not", "{\"type\":\"queued\",\"id\":\"1-0\"}", b.data);
    frame_done_by(&b, "1-0", 3, "m", 1, NULL);
    struct frame_head h;
    CHECK("done names the model and the endpoint", strstr(b.data, ",\"model\":\"m\",\"fallback\":true}") &&
                                                  frame_peek(b.data, b.len, &h) == 0 && frame_is_final(&h));
    struct usage u = {7, 3};
    frame_done_by(&b, "1-0", 3, "m", 0, &u);
    CHECK("... and what it cost, when the model said", strstr(b.data, ",\"fallback\":false,\"usage\":"
                                                  "{\"prompt_tokens\":7,\"completion_tokens\":3}}") != NULL);
    u = USAGE_UNKNOWN;
    frame_done_by(&b, "1-0", 3, "m", 0, &u);
    CHECK("... nothing when it did not", strstr(b.data, "usage") == NULL);
    buf_free(&b);

    char id[48], conv[48], sid[] = "5-1", sconv[] = ID;
    const char *why;
    long retry;
    redisReply a = str_reply(sid), c = str_reply(sconv);
    redisReply *pair[2] = {&a, &c};
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = pair};
    CHECK("queued in a conversation", enqueue_result(&r, id, conv, &why, &retry) == 0 &&
                                          !strcmp(id, "5-1") && !strcmp(conv, ID));
    CHECK("queued in none", enqueue_result(&a, id, conv, &why, &retry) == 0 && !conv[0]);
    redisReply three = {.type = REDIS_REPLY_INTEGER, .integer = 3}, zero = {.type = REDIS_REPLY_INTEGER};
    redisReply *no[2] = {&three, &zero};
    r.element = no;
    CHECK("an unknown conversation", enqueue_result(&r, id, conv, &why, &retry) == ENQUEUE_NO_CONVERSATION &&
                                         why == MSG_CONVERSATION_UNKNOWN);
    redisReply four = {.type = REDIS_REPLY_INTEGER, .integer = 4}, one = {.type = REDIS_REPLY_INTEGER, .integer = 1};
    redisReply *busy[2] = {&four, &one};
    r.element = busy;
    CHECK("a conversation with conversation_max_queued unanswered questions: a 429",
          enqueue_result(&r, id, conv, &why, &retry) == ENQUEUE_LIMITED && why == MSG_CONVERSATION_BUSY &&
              retry == 1);
}

int main(void)
{
    test_ids();
    test_history();
    test_messages();
    test_frames_and_replies();
    return check_failed ? 1 : 0;
}
