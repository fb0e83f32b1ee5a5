/* Host cost of the core (benchmarks/bench_c_firmware.py): nanoseconds per sample (streaming at
 * 2 kHz in batches of 10, the limit armed, the motor on) and per command (a SetLimit, a
 * Vibrate, a Keepalive, each with a new seq, through mb_core_rx_message), and the core's
 * static RAM (sizeof mb_core_t). POSIX clock_gettime: host only. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mb_core.h"

static volatile uint32_t sink;
static int32_t f_adc(void *ctx, uint32_t t, bool *ok) {
    (void)ctx;
    *ok = true;
    return 12000 + (int32_t)(t % 97u);
}
static void f_write(void *ctx, const uint8_t *m, size_t n) {
    (void)ctx;
    sink += m[n - 1];
}
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    static mb_core_t core;
    mb_config_t cfg;
    mb_hal_t hal = {NULL, NULL, f_adc, NULL, f_write, NULL, NULL};
    uint8_t buf[MB_MAX_MESSAGE_LEN];
    mb_msg_t m;
    unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000ul, i;
    uint32_t t = 0;
    double t0, per_sample, per_command;
    size_t len;
    mb_config_default(&cfg);
    mb_core_init(&core, &cfg, &hal, 0);
    memset(&m, 0, sizeof m);
    m.type = MB_SET_LIMIT;
    m.u.set_limit.limit_mn = 40000;
    len = mb_encode(&m, buf, sizeof buf);
    mb_core_rx_message(&core, 0, buf, len);
    m.type = MB_SET_STREAM;
    m.seq = 1;
    m.u.set_stream.rate_hz = 2000;
    m.u.set_stream.samples_per_batch = 10;
    len = mb_encode(&m, buf, sizeof buf);
    mb_core_rx_message(&core, 0, buf, len);
    /* samples: poll every 500 us (one sample each), a keepalive every 100 ms */
    t0 = now_s();
    for (i = 0; i < n; i++) {
        t += 500u;
        mb_core_poll(&core, t);
        if (i % 200u == 0) {
            m.type = MB_KEEPALIVE;
            m.seq = (uint16_t)(i / 200u + 2u);
            len = mb_encode(&m, buf, sizeof buf);
            mb_core_rx_message(&core, t, buf, len);
        }
    }
    per_sample = (now_s() - t0) / (double)n * 1e9;
    /* commands: no time passes, so no samples are taken between them */
    t0 = now_s();
    for (i = 0; i < n; i++) {
        memset(&m, 0, sizeof m);
        m.seq = (uint16_t)i;
        switch (i % 3u) {
        case 0: m.type = MB_SET_LIMIT; m.u.set_limit.limit_mn = 40000; break;
        case 1: m.type = MB_VIBRATE; m.u.vibrate.intensity_permille = 300; break;
        default: m.type = MB_KEEPALIVE; break;
        }
        len = mb_encode(&m, buf, sizeof buf);
        mb_core_rx_message(&core, t, buf, len);
    }
    per_command = (now_s() - t0) / (double)n * 1e9;
    printf("static RAM of the core (sizeof mb_core_t): %lu bytes\n", (unsigned long)sizeof core);
    printf("per sample (2 kHz, batches of 10, limit armed): %.0f ns\n", per_sample);
    printf("per command (SetLimit/Vibrate/Keepalive, new seq): %.0f ns\n", per_command);
    return (int)(sink & 0u);
}
