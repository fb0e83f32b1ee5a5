/* Random and mutated frames through the C decoder and the whole core, for the sanitizers
 * (built with -fsanitize=address,undefined by tests/test_c_firmware.py and
 * benchmarks/fuzz_c_firmware.py). Usage: fuzz_decoder FRAMES [SEED]. Each round is one frame:
 * pure random bytes, a valid command frame with bytes flipped, inserted, deleted or cut, or a
 * valid message with a fixed CRC around mutated contents (so the message decoder sees it).
 * Every frame goes through mb_frame_feed into a core (which answers what decodes) and every
 * CRC-good message through mb_decode, whose result must encode back to the same bytes.
 * Prints "FUZZ OK n frames ..." or exits non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mb_core.h"

static uint64_t rng_state;
static uint32_t rnd(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 32);
}

static unsigned long long replies, decoded, roundtrip_failures;
static int32_t adc;

static int32_t f_adc(void *ctx, uint32_t t_us, bool *ok) {
    (void)ctx;
    (void)t_us;
    *ok = (rnd() & 1023u) != 0;
    adc += (int32_t)(rnd() % 2001u) - 1000;
    return adc;
}
static void f_motor(void *ctx, uint16_t p, uint16_t hz, uint8_t w) {
    (void)ctx;
    (void)hz;
    (void)w;
    if (p > 1000) abort();
}
static void f_write(void *ctx, const uint8_t *msg, size_t len) {
    mb_msg_t m;
    (void)ctx;
    if (len > MB_MAX_MESSAGE_LEN || mb_decode(msg, len, &m) != MB_DECODE_OK) abort();
    replies++;
}

static void check_message(const uint8_t *msg, size_t len) {
    mb_msg_t m;
    uint8_t again[MB_MAX_MESSAGE_LEN];
    if (mb_decode(msg, len, &m) == MB_DECODE_OK) {
        size_t n = mb_encode(&m, again, sizeof again);
        decoded++;
        if (n != len || memcmp(again, msg, len) != 0) roundtrip_failures++;
    }
}

static void sink(void *ctx, const uint8_t *msg, size_t len) {
    (void)ctx;
    check_message(msg, len);
}

static const uint8_t TYPES[] = {MB_HELLO, MB_SET_STREAM, MB_VIBRATE, MB_STOP, MB_KEEPALIVE,
                                MB_SET_LIMIT, MB_TARE, MB_STATUS, MB_ACK, MB_FORCE_BATCH};

static size_t valid_message(uint8_t *buf) {
    uint8_t t = TYPES[rnd() % sizeof TYPES];
    int fixed = mb_payload_len(t);
    size_t len = MB_HEADER_LEN + (size_t)fixed, i;
    buf[0] = 2;
    buf[1] = t;
    buf[2] = (uint8_t)rnd();
    buf[3] = (uint8_t)(rnd() & 3u);
    for (i = MB_HEADER_LEN; i < len; i++) buf[i] = (uint8_t)rnd();
    if (t == MB_FORCE_BATCH) {
        buf[10] = (uint8_t)(rnd() % (MB_MAX_SAMPLES_PER_BATCH + 1));
        for (i = 0; i < 4u * buf[10]; i++) buf[len + i] = (uint8_t)rnd();
        len += 4u * buf[10];
    }
    return len;
}

int main(int argc, char **argv) {
    static mb_core_t core;
    static mb_frame_decoder_t dec;
    unsigned long long n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000ull, i;
    mb_config_t cfg;
    mb_hal_t hal = {NULL, NULL, f_adc, f_motor, f_write, NULL, NULL};
    uint32_t now = 0xFFF00000u; /* wraps early in the run */
    uint8_t frame[2 * MB_MAX_FRAME_LEN + 64];
    uint8_t msg[MB_MAX_MESSAGE_LEN + 8];
    rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) * 2654435761ull + 1 : 88172645463325252ull;
    mb_config_default(&cfg);
    cfg.ramp_permille_per_ms = 5;
    mb_core_init(&core, &cfg, &hal, now);
    mb_frame_decoder_init(&dec);
    for (i = 0; i < n; i++) {
        size_t len = 0, k;
        uint32_t kind = rnd() % 4u;
        if (kind == 0) { /* random bytes, sometimes with delimiters */
            len = rnd() % (sizeof frame);
            for (k = 0; k < len; k++) frame[k] = (uint8_t)((rnd() % 8u) ? rnd() : 0u);
        } else {
            size_t mlen = valid_message(msg);
            if (kind == 3) { /* mutate the message, then frame it with a right CRC */
                unsigned flips = 1 + rnd() % 3u;
                for (k = 0; k < flips; k++) msg[rnd() % mlen] ^= (uint8_t)(1u << (rnd() % 8u));
                if (rnd() % 4u == 0) mlen = rnd() % (mlen + 1);
                if (mlen == 0) mlen = 1;
            }
            len = mb_frame_encode(msg, mlen, frame, sizeof frame);
            if (len == 0) abort();
            if (kind == 2) { /* mutate the frame: flip, insert, delete, cut */
                unsigned edits = 1 + rnd() % 4u;
                for (k = 0; k < edits && len > 1; k++) {
                    size_t at = rnd() % len;
                    switch (rnd() % 4u) {
                    case 0: frame[at] ^= (uint8_t)(1u << (rnd() % 8u)); break;
                    case 1:
                        if (len < sizeof frame) {
                            memmove(frame + at + 1, frame + at, len - at);
                            frame[at] = (uint8_t)rnd();
                            len++;
                        }
                        break;
                    case 2:
                        memmove(frame + at, frame + at + 1, len - at - 1);
                        len--;
                        break;
                    default: len = at + 1; break;
                    }
                }
            }
        }
        mb_frame_feed(&dec, frame, len, sink, NULL);
        now += rnd() % 3000u;
        mb_core_rx_serial(&core, now, frame, len);
        if (rnd() % 64u == 0) mb_core_rx_message(&core, now, frame, len); /* as a BLE write */
    }
    if (roundtrip_failures) {
        printf("FUZZ FAILED: %llu decoded messages did not encode back\n", roundtrip_failures);
        return 1;
    }
    printf("FUZZ OK %llu frames, %llu messages decoded, %llu replies, %lu crc errors, "
           "%lu bad frames\n",
           n, decoded, replies, (unsigned long)dec.stats.crc_errors,
           (unsigned long)dec.stats.bad_frames);
    return 0;
}
