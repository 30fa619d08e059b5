/* messages.h -- what the worker's error frames tell the user: Chinese, with
 * an English gloss in parentheses, as every message of the service
 * (docs/PROTOCOL.md). */
#ifndef AIMSG_WORKER_MESSAGES_H
#define AIMSG_WORKER_MESSAGES_H

#define MSG_BUSY "AI 服务繁忙，请稍后再试 (the AI service is busy, please try again later)"
#define MSG_UNAVAILABLE "AI 服务暂时不可用 (the AI service is unavailable, please try again later)"
#define MSG_CONFIG "AI 服务配置错误，请联系管理员 (the AI service rejected our credentials)"
#define MSG_INTERRUPTED "回答中断 (the answer was interrupted)"
#define MSG_INVALID "AI 服务返回了无法识别的数据 (the AI service sent an invalid response)"
#define MSG_TOO_LONG "回答过长，已停止 (the answer was too long and was stopped)"
#define MSG_IMAGE_GONE "图片已过期 (the image is no longer available)"
#define MSG_DEAD "消息多次处理失败，已放弃 (this message failed repeatedly and was set aside)"

#endif
