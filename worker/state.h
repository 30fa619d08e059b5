/* state.h -- the state of one worker process and its tasks (a task: one
 * job being answered), shared by the worker's parts: worker.c (the Redis
 * connections and the loop), intake.c (reading, claiming and setting aside
 * jobs), task.c (a job's life from taken to over), turns.c (waiting for a
 * conversation's turn), asking.c (the model call), frames.c (an answer's
 * frames on their way to Redis). */
#ifndef AIMSG_WORKER_STATE_H
#define AIMSG_WORKER_STATE_H

#include <curl/curl.h>
#include <signal.h>
#include <stddef.h>
#include <sys/queue.h>
#include <hiredis/async.h>

#include "buf.h"
#include "config.h"
#include "frame.h"
#include "history.h"
#include "job.h"
#include "keys.h"
#include "metrics.h"
#include "model.h"
#include "redis_async.h"
#include "redis_conn.h"
#include "redis_script.h"
#include "sentinel_watch.h"
#include "usage.h"

#define READ_BLOCK_MS 2000      /* XREADGROUP BLOCK */

enum task_state {
    TASK_PROBING,       /* claimed: reading what its answer already holds */
    TASK_TURN,          /* in a conversation: waiting for the earlier questions' answers */
    TASK_FETCHING,      /* image job: reading the image */
    TASK_WAITING,       /* waiting to retry the model */
    TASK_STREAMING,     /* the model call runs */
    TASK_ENDING,        /* last frame queued: waiting for Redis to confirm */
};

/* A frame waiting for Redis to confirm it was stored and published. */
struct out_frame {
    STAILQ_ENTRY(out_frame) link;
    int append;         /* put it after whatever the answer holds */
    char *turn;         /* the conversation turn a done frame stores; NULL: none */
    size_t turn_len;
    int counts;         /* a done frame: the answer is counted (usage.h) */
    struct usage usage; /* ... with these tokens */
    char usage_day[USAGE_DAY_LEN + 1];
    size_t len;
    char data[];
};

struct task {
    LIST_ENTRY(task) link;      /* the worker's tasks */
    struct worker *w;
    enum task_state state;
    char id[48];
    char *reply;
    char *content;
    size_t content_len;
    enum job_kind kind;
    char *image_key;
    char mime[32];
    char *image_url;
    int attempt;
    long long retry_at;
    long long started_ms;
    long long call_ms;          /* when the model call began */
    struct model_call *call;
    long seq;
    int dirty;                  /* on the worker's dirty list */
    SLIST_ENTRY(task) dirty_link;
    STAILQ_HEAD(, out_frame) out; /* unconfirmed frames, oldest first */
    struct out_frame *unsent;   /* the first not yet sent on this connection */
    int inflight;               /* commands whose callback still has t */
    int dropped;                /* over: freed once inflight is 0 */
    int claimed;                /* it was another worker's */
    char *model;                /* what the client asked for (or the default) */
    int fallback;               /* the fallback endpoint is asked */
    char *conversation;         /* NULL: none */
    long long turn_at;          /* TASK_TURN: when to ask again */
    int turn_asking;            /* TASK_TURN: the question is on its way */
    struct history history;     /* the conversation's earlier turns */
    struct buf answer;          /* the text sent so far (conversations) */
    long end_mark;              /* its last frame is w->ends_sent's end_mark-th (waits) */
    int end_stored;             /* ... and the script stored it: end_result */
    long end_result;
    const char *usage_member;   /* whom it counts for (usage.h); in user or static */
    char *user;                 /* the job's user field (NULL: none) */
    struct usage usage;         /* what the model reported */
};

struct worker {
    const struct config *cfg;
    struct keys keys;
    struct redis_addr addr;
    char consumer[160];
    char base_url[512];
    CURLM *multi;
    int epfd;                   /* curl's sockets (curl_multi_socket_action) */
    long long curl_timer_at;    /* -1: curl wants no timeout call */
    SLIST_HEAD(, task) dirty;   /* tasks with delta text waiting to be published */
    int nwaiting;               /* tasks in TASK_WAITING */
    int nturn;                  /* tasks in TASK_TURN */
    int nturn_conversations;    /* the conversations of those */
    long long next_turn_at;     /* the earliest turn_at of those not being asked */
    struct redis_async intake, ctl;
    struct redis_async cancels;     /* subscribed to P cancels */
    char writer[33];            /* this process, in the answers it writes */
    struct script answer;       /* answer_write_lua, loaded first on each ctl connection */
    int script_loading;         /* its first SCRIPT LOAD is unanswered */
    int closing;                /* callbacks must not touch tasks any more */
    int script_error_reported;
    struct redis_backoff backoff;
    int group_ready, creating_group, reading, claiming;
    long long next_claim, next_heartbeat;
    LIST_HEAD(, task) tasks;
    int ntasks;
    volatile sig_atomic_t stop_requested;
    long long stop_deadline;
    int auth_reported[2];       /* the primary endpoint's rejection logged; the fallback's */
    int redis_lost;             /* say so when it comes back */
    long long wait_paused_until; /* too few replicas: answers end without WAIT until then */
    long ends_sent;             /* last frames sent that wait for replicas (end_mark) */
    int wait_inflight;          /* a WAIT is on its way on ctl (replica_wait.h) ... */
    long wait_covers;           /* ... covering the last frames marked up to this */
    int watching;               /* sentinel://: subscribed to +switch-master on watch */
    struct sentinel_watch sentinels;
    struct redis_async watch;
    struct redis_backoff watch_backoff;
    int no_stream_options[2];   /* the primary [0], the fallback [1] refused it */
    struct metrics_publish metrics;
    struct buf frame;
};


/* worker.c */
int ctl_ready(const struct worker *w);      /* Redis takes commands that need the answer script */
void acknowledge(struct worker *w, const char *id);

/* intake.c */
void ensure_group(struct worker *w);
void read_jobs(struct worker *w);
void claim_stale_jobs(struct worker *w);
void heartbeat(struct worker *w);
void dead_letter(struct worker *w, const redisReply *entry, const char *reason);

/* task.c */
void task_start(struct worker *w, const redisReply *entry, int claimed);
void task_go(struct task *t);
void task_finish(struct task *t, const char *message);
void task_cancel(struct worker *w, const char *id);
void task_drop(struct task *t);
struct task *task_of_reply(redisAsyncContext *ac, void *privdata, const redisReply *reply);
int worker_runs(const struct worker *w, const char *id);
void release_unstarted_tasks(struct worker *w);
void release_all_tasks(struct worker *w);

/* turns.c */
void task_begin(struct task *t);
void turn_over(struct task *t);
void ask_due_turns(struct worker *w);
void release_waiting_turns(struct worker *w);

/* asking.c */
const char *asked_model(const struct task *t);
void task_call_model(struct task *t);
void task_model_done(struct task *t, CURLcode code);

/* frames.c */
int task_emit(struct task *t, int append);
int task_emit_storing(struct task *t, int append, struct buf *turn, int counts);
void task_send_frames(struct task *t);
void out_frame_free(struct out_frame *f);
void publish_ready(struct worker *w);

#endif
