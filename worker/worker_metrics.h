/* worker_metrics.h -- what the worker counts (common/metrics.h): answers by
 * outcome, model errors by class, time to the first token and to the end,
 * chunks published, jobs taken, claimed, retried and dead-lettered. */
#ifndef AIMSG_WORKER_METRICS_H
#define AIMSG_WORKER_METRICS_H


void worker_metrics_init(const char *consumer, long interval_ms);
void worker_metrics_answer(const char *outcome);   /* done, error, cancelled */
void worker_metrics_model_error(const char *class, long status); /* model_call_failure_class */
void worker_metrics_first_token(double seconds);
void worker_metrics_answer_time(double seconds);
void worker_metrics_job_wait(double seconds);      /* queued -> taken */
void worker_metrics_chunk(void);
void worker_metrics_taken(void);
void worker_metrics_claimed(void);
void worker_metrics_retried(void);
void worker_metrics_dead(void);
void worker_metrics_in_flight(int n);

#endif
