/* tsan.h - ThreadSanitizer happens-before annotations for hand-offs TSan cannot see.
 *
 * liburcu 0.13's atomics (uatomic_*, cmm_*) are inline assembly, invisible to TSan. Where our
 * code relies on the ordering they give (a wfcqueue splice, an RCU publication, a grace period),
 * it states the edge with tsan_release(addr) on the publishing side and tsan_acquire(addr) on
 * the receiving side. Both compile to nothing outside TSan builds. */
#ifndef SVCSENSOR_TSAN_H
#define SVCSENSOR_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define SVC_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SVC_TSAN 1
#endif
#endif

#ifdef SVC_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define tsan_acquire(p) __tsan_acquire((void *)(p))
#define tsan_release(p) __tsan_release((void *)(p))
#else
#define tsan_acquire(p) ((void)0)
#define tsan_release(p) ((void)0)
#endif

#endif
