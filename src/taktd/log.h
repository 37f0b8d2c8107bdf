/* SPDX-License-Identifier: MIT */
/* log.h - leveled logging to stderr. */
#ifndef TAKTD_LOG_H
#define TAKTD_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern enum log_level td_log_level;
/* Parse "error", "warn", "info", "debug"; returns 0 or -1. */
int td_log_parse(const char *s, enum log_level *out);
void td_log(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define LOGE(...) td_log(LOG_ERROR, __VA_ARGS__)
#define LOGW(...) td_log(LOG_WARN, __VA_ARGS__)
#define LOGI(...) td_log(LOG_INFO, __VA_ARGS__)
#define LOGD(...) do { if (td_log_level >= LOG_DEBUG) td_log(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
