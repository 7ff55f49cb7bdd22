/*
 * metrics.c -- the clock of metrics.h. The TSC is used only when the CPU
 * says it is invariant (constant rate, running in every power state), and
 * its rate is measured against CLOCK_MONOTONIC rather than trusted.
 */
#include "base/metrics.h"

#include <pthread.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

morphd_clock_t morphd_clock = {0, 1ull << 32};

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void calibrate(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000000, &a, &b, &c, &d) || a < 0x80000007)
        return;
    __get_cpuid(0x80000007, &a, &b, &c, &d);
    if (!(d & (1u << 8))) /* invariant TSC */
        return;
    uint64_t n0 = mono_ns(), t0 = __rdtsc(), n1, t1;
    do {
        n1 = mono_ns();
        t1 = __rdtsc();
    } while (n1 - n0 < 200000);
    if (t1 <= t0)
        return;
    uint64_t mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
    if (mult == 0)
        return;
    morphd_clock.mult = mult;
    morphd_clock.tsc = 1;
#endif
}

void morphd_clock_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, calibrate);
}
