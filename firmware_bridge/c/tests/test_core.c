/* The C firmware core's own tests, built with -fsanitize=address,undefined and run by
 * tests/test_c_firmware.py (make test): the golden vectors of docs/protocol-vectors.json both
 * ways, bad frames, every command's range checks, no vibration without a limit, the ceiling,
 * repeated commands, the deadman, the limit latch, u32 time wrap, the ramp, tare, a sensor
 * fault, patterns (version 3: steps, loop, cap, stop, deadman, limit, restart). Prints one line per failure and "C TESTS OK n checks" at the end. */
#include <stdio.h>
#include <string.h>

#include "mb_core.h"
#include "vectors.h"

static int failures = 0;
static int checks = 0;
#define CHECK(cond)                                                                   \
    do {                                                                              \
        checks++;                                                                     \
        if (!(cond)) {                                                                \
            failures++;                                                               \
            printf("FAIL %s:%d: %s [%s]\n", __FILE__, __LINE__, #cond, current_test); \
        }                                                                             \
    } while (0)

static const char *current_test = "";

/* ---- a test HAL: an ADC value to set, the motor and the messages recorded ---------------- */

#define MAX_OUT 4096
static mb_msg_t out[MAX_OUT];
static size_t out_len;
static uint8_t last_bytes[MB_MAX_MESSAGE_LEN];
static size_t last_bytes_len;
static int32_t adc_raw;
static bool adc_ok = true;
static uint16_t motor_permille;
static uint16_t motor_hz;
static unsigned motor_calls;
static int events[64];
static size_t events_len;

static int32_t t_adc(void *ctx, uint32_t t_us, bool *ok) {
    (void)ctx;
    (void)t_us;
    *ok = adc_ok;
    return adc_raw;
}
static void t_motor(void *ctx, uint16_t permille, uint16_t hz, uint8_t waveform) {
    (void)ctx;
    (void)waveform;
    motor_permille = permille;
    motor_hz = hz;
    motor_calls++;
}
static void t_write(void *ctx, const uint8_t *msg, size_t len) {
    (void)ctx;
    CHECK(len <= MB_MAX_MESSAGE_LEN);
    memcpy(last_bytes, msg, len);
    last_bytes_len = len;
    if (out_len < MAX_OUT) {
        CHECK(mb_decode(msg, len, &out[out_len]) == MB_DECODE_OK);
        out_len++;
    }
}
static uint8_t t_battery(void *ctx) {
    (void)ctx;
    return 87;
}
static void t_event(void *ctx, uint32_t t_us, int code, int32_t a, int32_t b) {
    (void)ctx;
    (void)t_us;
    (void)a;
    (void)b;
    if (events_len < 64) events[events_len++] = code;
}

static mb_core_t core; /* static, as on a board */

static void setup_at(uint32_t t0, int32_t raw) {
    mb_config_t cfg;
    mb_hal_t hal = {NULL, NULL, t_adc, t_motor, t_write, t_battery, t_event};
    mb_config_default(&cfg);
    cfg.info.cal_offset_counts = 12000;
    out_len = 0;
    events_len = 0;
    adc_raw = raw;
    adc_ok = true;
    motor_permille = 0;
    motor_calls = 0;
    mb_core_init(&core, &cfg, &hal, t0);
}

static void setup(void) { setup_at(0, 12000); }

static void send(uint32_t now, const mb_msg_t *m) {
    uint8_t buf[MB_MAX_MESSAGE_LEN];
    size_t n = mb_encode(m, buf, sizeof buf);
    CHECK(n > 0);
    mb_core_rx_message(&core, now, buf, n);
}

/* the last reply (not Status, not ForceBatch) since out_len was `from` */
static const mb_msg_t *reply_since(size_t from) {
    const mb_msg_t *r = NULL;
    size_t i;
    for (i = from; i < out_len; i++)
        if (out[i].type != MB_STATUS && out[i].type != MB_FORCE_BATCH) r = &out[i];
    return r;
}

static const mb_msg_t *cmd(uint32_t now, mb_msg_t m) {
    size_t from = out_len;
    send(now, &m);
    return reply_since(from);
}

static mb_msg_t hello(uint16_t seq) {
    mb_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = MB_HELLO;
    m.seq = seq;
    m.u.hello.protocol_version = 2;
    return m;
}
static mb_msg_t set_limit(uint16_t seq, uint32_t mn) {
    mb_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = MB_SET_LIMIT;
    m.seq = seq;
    m.u.set_limit.limit_mn = mn;
    return m;
}
static mb_msg_t vibrate(uint16_t seq, uint16_t permille, uint16_t hz, uint8_t wave, uint32_t ms) {
    mb_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = MB_VIBRATE;
    m.seq = seq;
    m.u.vibrate.intensity_permille = permille;
    m.u.vibrate.frequency_hz = hz;
    m.u.vibrate.waveform = wave;
    m.u.vibrate.duration_ms = ms;
    return m;
}
static mb_msg_t bare(uint8_t type, uint16_t seq) {
    mb_msg_t m;
    memset(&m, 0, sizeof m);
    m.type = type;
    m.seq = seq;
    return m;
}
static mb_msg_t set_stream(uint16_t seq, uint16_t rate, uint8_t spb) {
    mb_msg_t m = bare(MB_SET_STREAM, seq);
    m.u.set_stream.rate_hz = rate;
    m.u.set_stream.samples_per_batch = spb;
    return m;
}

static bool is_ack(const mb_msg_t *r, uint16_t seq) {
    return r != NULL && r->type == MB_ACK && r->u.ack.cmd_seq == seq;
}
static bool is_nack(const mb_msg_t *r, uint16_t seq, uint8_t code) {
    return r != NULL && r->type == MB_NACK && r->u.nack.cmd_seq == seq && r->u.nack.code == code;
}

/* ---- golden vectors ------------------------------------------------------------------- */

static long long field_of(const mb_msg_t *m, const char *name) {
    if (!strcmp(name, "cmd_seq"))
        return m->type == MB_ACK ? m->u.ack.cmd_seq
               : m->type == MB_NACK ? m->u.nack.cmd_seq : m->u.tare_result.cmd_seq;
    if (!strcmp(name, "cmd_type")) return m->type == MB_ACK ? m->u.ack.cmd_type : m->u.nack.cmd_type;
    if (!strcmp(name, "code")) return m->u.nack.code;
    if (!strcmp(name, "protocol_version")) return m->u.device_info.protocol_version;
    if (!strcmp(name, "limit_max_mn")) return m->u.device_info.limit_max_mn;
    if (!strcmp(name, "offset_counts")) return m->u.tare_result.offset_counts;
    printf("FAIL unknown field %s in a rule vector\n", name);
    failures++;
    return -1;
}

static void frame_sink(void *ctx, const uint8_t *msg, size_t len) {
    mb_msg_t *m = (mb_msg_t *)ctx;
    CHECK(mb_decode(msg, len, m) == MB_DECODE_OK);
    out_len++;
}

static void test_message_vectors(void) {
    size_t i;
    for (i = 0; i < MESSAGE_VECTOR_COUNT; i++) {
        const message_vector_t *v = &MESSAGE_VECTORS[i];
        uint8_t buf[MB_MAX_FRAME_LEN];
        uint8_t again[MB_MAX_MESSAGE_LEN];
        mb_msg_t m;
        size_t n;
        current_test = v->name;
        n = mb_encode(&v->fields, buf, sizeof buf); /* fields -> bytes */
        CHECK(n == v->message_len && memcmp(buf, v->message, n) == 0);
        CHECK(mb_decode(v->message, v->message_len, &m) == MB_DECODE_OK); /* bytes -> fields */
        CHECK(m.type == v->fields.type && m.seq == v->fields.seq);
        n = mb_encode(&m, again, sizeof again);
        CHECK(n == v->message_len && memcmp(again, v->message, n) == 0);
        if (v->frame != NULL) {
            mb_frame_decoder_t d;
            mb_msg_t got;
            n = mb_frame_encode(v->message, v->message_len, buf, sizeof buf);
            CHECK(n == v->frame_len && memcmp(buf, v->frame, n) == 0);
            mb_frame_decoder_init(&d);
            out_len = 0;
            mb_frame_feed(&d, v->frame, v->frame_len, frame_sink, &got);
            CHECK(out_len == 1 && got.type == v->fields.type && got.seq == v->fields.seq);
        }
        if (v->message_len > 200) { /* the longest message: framed, back, byte for byte */
            mb_frame_decoder_t d;
            mb_msg_t got;
            n = mb_frame_encode(v->message, v->message_len, buf, sizeof buf);
            CHECK(n > 0 && n <= MB_MAX_FRAME_LEN);
            mb_frame_decoder_init(&d);
            out_len = 0;
            mb_frame_feed(&d, buf, n, frame_sink, &got);
            CHECK(out_len == 1 && got.u.force_batch.count == 58);
        }
    }
    current_test = "crc_check_value";
    CHECK(mb_crc16((const uint8_t *)"123456789", 9) == 0x29B1u);
}

static void test_bad_frames(void) {
    size_t i;
    for (i = 0; i < BAD_FRAME_COUNT; i++) {
        const bad_frame_vector_t *v = &BAD_FRAMES[i];
        current_test = v->name;
        if (v->frame != NULL) {
            mb_frame_decoder_t d;
            mb_msg_t got;
            mb_frame_decoder_init(&d);
            out_len = 0;
            mb_frame_feed(&d, v->frame, v->frame_len, frame_sink, &got);
            CHECK((int)out_len == v->messages);
            CHECK((int)d.stats.crc_errors == v->crc_errors);
        } else {
            /* a right CRC around a message that does not decode: the core answers a Nack */
            mb_msg_t m;
            int rc = mb_decode(v->message, v->message_len, &m);
            const mb_msg_t *r;
            size_t from;
            uint8_t expected = v->message[0] != 2    ? MB_NACK_BAD_VERSION
                               : v->message[1] == 0x7f ? MB_NACK_UNKNOWN_TYPE
                                                       : MB_NACK_BAD_LENGTH;
            CHECK(rc == expected);
            setup();
            from = out_len;
            mb_core_rx_message(&core, 1000, v->message, v->message_len);
            r = reply_since(from);
            CHECK(r != NULL && r->type == MB_NACK && r->u.nack.code == expected);
        }
    }
}

static void test_rule_vectors(void) {
    size_t i;
    const mb_msg_t *replies[32];
    mb_msg_t saved[32];
    int last_exchange = -1;
    for (i = 0; i < RULE_STEP_COUNT; i++) {
        const rule_step_t *s = &RULE_STEPS[i];
        const mb_msg_t *r;
        size_t from;
        current_test = s->exchange;
        if (s->exchange_index != last_exchange) {
            setup();
            last_exchange = s->exchange_index;
        }
        from = out_len;
        mb_core_rx_message(&core, 10000u * (uint32_t)(s->step + 1), s->send, s->send_len);
        r = reply_since(from);
        replies[s->step] = r;
        if (r != NULL) saved[s->step] = *r;
        if (s->same_reply_as >= 0) {
            CHECK(r != NULL && replies[s->same_reply_as] != NULL &&
                  memcmp(r, &saved[s->same_reply_as], sizeof *r) == 0);
        } else if (s->expect_count == 0) {
            CHECK(r == NULL);
        } else {
            const expect_field_t *f;
            CHECK(r != NULL && r->type == s->expect_type);
            for (f = s->expect_fields; r != NULL && f->name != NULL; f++)
                CHECK(field_of(r, f->name) == f->value);
        }
        if (s->motor_on >= 0) CHECK((motor_permille > 0) == (s->motor_on == 1));
        if (s->limit_mn >= 0) CHECK(mb_core_get(&core, MB_GET_LIMIT_MN) == s->limit_mn);
    }
}

/* ---- behaviour ---------------------------------------------------------------------------- */

static void test_range_checks(void) {
    current_test = "range_checks";
    setup();
    CHECK(cmd(1000, hello(0))->type == MB_DEVICE_INFO);
    CHECK(is_nack(cmd(1000, bare(MB_HELLO, 1)), 1, MB_NACK_BAD_VERSION)); /* version 0 */
    CHECK(is_ack(cmd(1000, set_limit(2, 40000)), 2));
    CHECK(is_nack(cmd(1000, set_stream(3, 9, 10)), 3, MB_NACK_OUT_OF_RANGE));
    CHECK(is_nack(cmd(1000, set_stream(4, 2001, 10)), 4, MB_NACK_OUT_OF_RANGE));
    CHECK(is_nack(cmd(1000, set_stream(5, 1000, 0)), 5, MB_NACK_OUT_OF_RANGE));
    CHECK(is_nack(cmd(1000, set_stream(6, 1000, 59)), 6, MB_NACK_OUT_OF_RANGE));
    CHECK(is_ack(cmd(1000, set_stream(7, 1000, 58)), 7));
    CHECK(is_ack(cmd(1000, set_stream(8, 0, 0)), 8)); /* rate 0 stops, whatever the batch */
    CHECK(is_nack(cmd(1000, vibrate(9, 1001, 100, 0, 0)), 9, MB_NACK_OUT_OF_RANGE));
    CHECK(is_nack(cmd(1000, vibrate(10, 500, 19, 0, 0)), 10, MB_NACK_OUT_OF_RANGE));
    CHECK(is_nack(cmd(1000, vibrate(11, 500, 251, 0, 0)), 11, MB_NACK_OUT_OF_RANGE));
    CHECK(is_nack(cmd(1000, vibrate(12, 500, 100, 3, 0)), 12, MB_NACK_OUT_OF_RANGE));
    CHECK(motor_permille == 0);
    CHECK(is_ack(cmd(1000, vibrate(13, 1000, 0, 2, 0)), 13)); /* 0 Hz: the default */
    CHECK(motor_permille == 1000 && motor_hz == 100);
    CHECK(is_ack(cmd(1000, bare(MB_STOP, 14)), 14));
    CHECK(motor_permille == 0);
    {
        const uint8_t unknown[] = {2, 0x0A, 15, 0};
        size_t from = out_len;
        mb_core_rx_message(&core, 1000, unknown, sizeof unknown);
        CHECK(is_nack(reply_since(from), 15, MB_NACK_UNKNOWN_TYPE));
    }
    CHECK(is_nack(cmd(1000, bare(MB_ACK, 16)), 16, MB_NACK_UNKNOWN_TYPE)); /* a device type */
    CHECK(cmd(1000, bare(MB_KEEPALIVE, 17)) == NULL);                     /* no answer */
    {
        const uint8_t short_msg[] = {2, 3, 18, 0, 1};
        const uint8_t long_stop[] = {2, 4, 19, 0, 0};
        const uint8_t no_header[] = {2, 4};
        size_t from = out_len;
        mb_core_rx_message(&core, 1000, short_msg, sizeof short_msg);
        CHECK(is_nack(reply_since(from), 18, MB_NACK_BAD_LENGTH));
        from = out_len;
        mb_core_rx_message(&core, 1000, long_stop, sizeof long_stop);
        CHECK(is_nack(reply_since(from), 19, MB_NACK_BAD_LENGTH));
        from = out_len;
        mb_core_rx_message(&core, 1000, no_header, sizeof no_header);
        CHECK(reply_since(from) == NULL);
    }
    /* a device without a motor refuses every Vibrate */
    {
        mb_config_t cfg;
        mb_hal_t hal = {NULL, NULL, t_adc, t_motor, t_write, t_battery, t_event};
        mb_config_default(&cfg);
        cfg.info.motor_kind = MB_MOTOR_NONE;
        mb_core_init(&core, &cfg, &hal, 0);
        CHECK(is_ack(cmd(1000, set_limit(1, 40000)), 1));
        CHECK(is_nack(cmd(1000, vibrate(2, 500, 100, 0, 0)), 2, MB_NACK_OUT_OF_RANGE));
    }
}

static void test_no_limit_and_ceiling(void) {
    current_test = "no_limit_and_ceiling";
    setup();
    CHECK(is_nack(cmd(1000, vibrate(1, 1, 100, 0, 0)), 1, MB_NACK_NO_LIMIT));
    CHECK(motor_permille == 0);
    CHECK(is_ack(cmd(1000, vibrate(2, 0, 100, 0, 0)), 2));
    CHECK(is_nack(cmd(1000, set_limit(3, 0)), 3, MB_NACK_OUT_OF_RANGE));
    CHECK(is_nack(cmd(1000, vibrate(4, 500, 100, 0, 0)), 4, MB_NACK_NO_LIMIT));
    CHECK(is_ack(cmd(1000, set_limit(5, 150001)), 5));
    CHECK(mb_core_get(&core, MB_GET_LIMIT_MN) == 150000);
    CHECK(is_ack(cmd(1000, set_limit(6, 0xFFFFFFFFu)), 6));
    CHECK(mb_core_get(&core, MB_GET_LIMIT_MN) == 150000);
    CHECK(is_ack(cmd(1000, set_limit(7, 1)), 7));
    CHECK(mb_core_get(&core, MB_GET_LIMIT_MN) == 1);
    CHECK(is_ack(cmd(1000, vibrate(8, 500, 100, 0, 0)), 8));
    CHECK(motor_permille == 500);
    {
        const mb_msg_t *info = cmd(2000, hello(9));
        CHECK(info != NULL && info->type == MB_DEVICE_INFO && info->u.device_info.limit_max_mn == 150000);
    }
}

static void test_repeats(void) {
    const mb_msg_t *first;
    mb_msg_t saved;
    unsigned i;
    current_test = "repeats";
    setup();
    cmd(1000, hello(0));
    CHECK(is_ack(cmd(1000, set_limit(1, 40000)), 1));
    first = cmd(2000, vibrate(2, 500, 100, 0, 0));
    CHECK(is_ack(first, 2));
    saved = *first;
    CHECK(is_ack(cmd(3000, bare(MB_STOP, 3)), 3));
    CHECK(motor_permille == 0);
    first = cmd(4000, vibrate(2, 500, 100, 0, 0)); /* a retry of seq 2 */
    CHECK(first != NULL && memcmp(first, &saved, sizeof saved) == 0); /* device seq too */
    CHECK(motor_permille == 0);                                       /* not acted on */
    CHECK(mb_core_get(&core, MB_GET_DUPLICATES) == 1);
    CHECK(mb_core_get(&core, MB_GET_LAST_ACCEPTED_US) == 3000);      /* no keepalive */
    CHECK(is_ack(cmd(5000, vibrate(2, 300, 100, 0, 0)), 2));         /* other bytes: new */
    CHECK(motor_permille == 300);
    /* a Tare is not retaken: same offset though the force moved */
    adc_raw = 12500;
    mb_core_poll(&core, 200000);
    {
        const mb_msg_t *t = cmd(200000, bare(MB_TARE, 6));
        int32_t offset = t->u.tare_result.offset_counts;
        CHECK(t->type == MB_TARE_RESULT && offset == 12500);
        adc_raw = 13000;
        mb_core_poll(&core, 400000);
        t = cmd(400000, bare(MB_TARE, 6));
        CHECK(t->type == MB_TARE_RESULT && t->u.tare_result.offset_counts == offset);
        CHECK(mb_core_get(&core, MB_GET_ZERO_COUNTS) == 12500);
    }
    /* 64 remembered: seq 10..73 evict 1, 2, 3, 6 and the rest */
    for (i = 10; i < 10 + MB_REPLY_CACHE; i++) cmd(400000, bare(MB_KEEPALIVE, (uint16_t)i));
    CHECK(is_ack(cmd(400000, bare(MB_STOP, 3)), 3));
    CHECK(mb_core_get(&core, MB_GET_STOPS) == 2); /* acted on again: forgotten */
    /* Hello forgets */
    cmd(400000, hello(0));
    CHECK(is_ack(cmd(400000, bare(MB_STOP, 3)), 3));
    CHECK(mb_core_get(&core, MB_GET_STOPS) == 3);
    /* a repeated Keepalive does not feed the deadman */
    setup();
    cmd(0, set_limit(1, 40000));
    cmd(0, vibrate(2, 500, 100, 0, 0));
    cmd(300000, bare(MB_KEEPALIVE, 3));
    cmd(600000, bare(MB_KEEPALIVE, 3));
    mb_core_poll(&core, 800000);
    CHECK(motor_permille == 0);
    CHECK(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_KEEPALIVE_LOST);
}

static uint32_t deadman_at(uint32_t t0) {
    uint32_t t;
    setup_at(t0, 12000);
    cmd(t0, set_limit(1, 40000));
    cmd(t0, vibrate(2, 600, 100, 0, 0));
    CHECK(motor_permille == 600);
    cmd(t0 + 100000u, bare(MB_KEEPALIVE, 3));
    CHECK(is_nack(cmd(t0 + 200000u, vibrate(4, 2000, 100, 0, 0)), 4, MB_NACK_OUT_OF_RANGE));
    for (t = t0 + 100000u; motor_permille > 0 && t != t0 + 2000000u; t += 1000u)
        mb_core_poll(&core, t);
    return t - 1000u - t0;
}

static void test_deadman_and_wrap(void) {
    uint32_t off;
    current_test = "deadman";
    off = deadman_at(0);
    CHECK(off == 600000u); /* 500 ms after the keepalive; the Nack did not feed it */
    CHECK(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_KEEPALIVE_LOST);
    CHECK(is_ack(cmd(700000u, bare(MB_KEEPALIVE, 5)), 5) == false); /* no reply to a keepalive */
    CHECK(!(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_KEEPALIVE_LOST)); /* cleared */
    CHECK(motor_permille == 0); /* stays off until a new Vibrate */
    current_test = "deadman_across_the_u32_wrap";
    off = deadman_at(0xFFFFFFFFu - 300000u);
    CHECK(off == 600000u);
    current_test = "batches_across_the_u32_wrap";
    setup_at(0xFFFFFFFFu - 25000u, 12000);
    cmd(0xFFFFFFFFu - 25000u, set_stream(1, 1000, 10));
    out_len = 0;
    mb_core_poll(&core, 30000u); /* 55 ms later, past the wrap */
    {
        size_t i, batches = 0;
        uint32_t prev = 0;
        for (i = 0; i < out_len; i++) {
            if (out[i].type != MB_FORCE_BATCH) continue;
            if (batches > 0) CHECK((uint32_t)(out[i].u.force_batch.t_us - prev) == 10000u);
            prev = out[i].u.force_batch.t_us;
            batches++;
        }
        CHECK(batches == 5);
    }
    current_test = "duration";
    setup();
    cmd(0, set_limit(1, 40000));
    cmd(0, vibrate(2, 600, 100, 0, 150));
    mb_core_poll(&core, 149000);
    CHECK(motor_permille == 600);
    mb_core_poll(&core, 150000);
    CHECK(motor_permille == 0);
    CHECK(!(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_KEEPALIVE_LOST));
}

static mb_msg_t pattern_define(uint16_t seq, uint8_t id, uint8_t loop_from, uint8_t count,
                               const uint16_t (*steps)[2]) {
    mb_msg_t m = bare(MB_PATTERN_DEFINE, seq);
    unsigned i;
    m.u.pattern_define.pattern_id = id;
    m.u.pattern_define.loop_from = loop_from;
    m.u.pattern_define.count = count;
    for (i = 0; i < count; i++) {
        m.u.pattern_define.steps[i].level_permille = steps[i][0];
        m.u.pattern_define.steps[i].duration_ms = steps[i][1];
    }
    return m;
}
static mb_msg_t play(uint16_t seq, uint8_t id, uint16_t intensity, uint16_t cap) {
    mb_msg_t m = bare(MB_PLAY_PATTERN, seq);
    m.u.play_pattern.pattern_id = id;
    m.u.play_pattern.intensity_permille = intensity;
    m.u.play_pattern.cap_permille = cap;
    m.u.play_pattern.frequency_hz = 100;
    return m;
}

static void test_patterns(void) {
    /* a ramp of three 100 ms steps, then a loop of two 50 ms steps */
    static const uint16_t steps[5][2] = {{200, 100}, {500, 100}, {1000, 100}, {0, 50}, {800, 50}};
    uint32_t t;
    current_test = "pattern_steps_loop_and_cap";
    setup();
    CHECK(is_ack(cmd(0, set_limit(1, 40000)), 1));
    CHECK(is_ack(cmd(0, pattern_define(2, 3, 3, 5, steps)), 2));
    CHECK(is_ack(cmd(0, play(3, 3, 500, 400)), 3));
    CHECK(motor_permille == 100 && motor_hz == 100); /* 200 * 0.5 */
    mb_core_poll(&core, 99000);
    CHECK(motor_permille == 100);
    mb_core_poll(&core, 100000);
    CHECK(motor_permille == 250);
    cmd(150000, bare(MB_KEEPALIVE, 4));
    mb_core_poll(&core, 200000);
    CHECK(motor_permille == 400); /* 500 capped at 400 */
    mb_core_poll(&core, 300000);
    CHECK(motor_permille == 0 && (mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_MOTOR_ON));
    cmd(320000, bare(MB_KEEPALIVE, 5));
    mb_core_poll(&core, 350000);
    CHECK(motor_permille == 400); /* 800 * 0.5 */
    mb_core_poll(&core, 400000);
    CHECK(motor_permille == 0 && mb_core_get(&core, MB_GET_PATTERN_STEP) == 3); /* looped */
    current_test = "pattern_the_one_playing_is_not_redefined";
    CHECK(is_nack(cmd(410000, pattern_define(6, 3, 0, 1, steps)), 6, MB_NACK_NOT_READY));
    CHECK(is_ack(cmd(410000, pattern_define(6, 1, 0, 1, steps)), 6)); /* another one is */
    CHECK(mb_core_get(&core, MB_GET_LAST_ACCEPTED_US) == 320000); /* and is no keepalive */
    current_test = "pattern_stop_mid_pattern";
    CHECK(is_ack(cmd(420000, bare(MB_STOP, 7)), 7));
    CHECK(motor_permille == 0 && mb_core_get(&core, MB_GET_PATTERN) == -1);
    mb_core_poll(&core, 500000);
    CHECK(motor_permille == 0);
    current_test = "pattern_restarted_from_its_first_step";
    CHECK(is_ack(cmd(500000, play(8, 3, 500, 400)), 8));
    CHECK(motor_permille == 100 && mb_core_get(&core, MB_GET_PATTERN_STEP) == 0);
    current_test = "pattern_deadman_mid_pattern";
    for (t = 500000; t < 1000000u; t += 1000) mb_core_poll(&core, t);
    CHECK(mb_core_get(&core, MB_GET_PATTERN) == 3); /* 499 ms without a command: still on */
    mb_core_poll(&core, 1000000u);
    CHECK(motor_permille == 0 && mb_core_get(&core, MB_GET_PATTERN) == -1);
    CHECK(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_KEEPALIVE_LOST);
    current_test = "pattern_cut_by_the_hard_limit";
    CHECK(is_ack(cmd(1100000u, play(9, 3, 1000, 1000)), 9));
    CHECK(motor_permille == 200);
    adc_raw = 12000 + 41000; /* 41 N over a 40 N limit */
    mb_core_poll(&core, 1102000u);
    CHECK(motor_permille == 0 && mb_core_get(&core, MB_GET_PATTERN) == -1);
    CHECK(is_nack(cmd(1103000u, play(10, 3, 1000, 1000)), 10, MB_NACK_LIMIT_TRIPPED));
    current_test = "pattern_unknown_to_a_version_2_device";
    {
        mb_config_t cfg;
        mb_hal_t hal = {NULL, NULL, t_adc, t_motor, t_write, t_battery, t_event};
        mb_config_default(&cfg);
        cfg.info.protocol_version = 2;
        mb_core_init(&core, &cfg, &hal, 0);
        CHECK(cmd(0, hello(0))->u.device_info.protocol_version == 2);
        CHECK(is_nack(cmd(0, pattern_define(1, 0, 0, 1, steps)), 1, MB_NACK_UNKNOWN_TYPE));
        CHECK(is_nack(cmd(0, play(2, 0, 500, 500)), 2, MB_NACK_UNKNOWN_TYPE));
    }
}

static void test_limit_latch(void) {
    current_test = "limit_latch";
    setup();
    cmd(0, set_limit(1, 10000)); /* 10 N = 10000 counts over the zero of 12000 */
    cmd(0, set_stream(2, 1000, 10));
    cmd(0, vibrate(3, 500, 100, 0, 0));
    adc_raw = 22000; /* exactly at the limit: not over */
    mb_core_poll(&core, 5000);
    CHECK(motor_permille == 500);
    adc_raw = 22001;
    mb_core_poll(&core, 6000); /* the very sample */
    CHECK(motor_permille == 0);
    CHECK(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_LIMIT_TRIPPED);
    CHECK(is_nack(cmd(7000, vibrate(4, 500, 100, 0, 0)), 4, MB_NACK_LIMIT_TRIPPED));
    CHECK(is_ack(cmd(8000, bare(MB_STOP, 5)), 5)); /* still over: stays latched */
    CHECK(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_LIMIT_TRIPPED);
    adc_raw = 12000;
    mb_core_poll(&core, 9000);
    CHECK(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_LIMIT_TRIPPED); /* under, no Stop yet */
    CHECK(is_nack(cmd(9000, vibrate(6, 500, 100, 0, 0)), 6, MB_NACK_LIMIT_TRIPPED));
    CHECK(is_ack(cmd(10000, bare(MB_STOP, 7)), 7));
    CHECK(!(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_LIMIT_TRIPPED));
    CHECK(is_ack(cmd(10000, vibrate(8, 500, 100, 0, 0)), 8));
    /* a new SetLimit clears it too, and a tare moves the zero the limit counts from */
    adc_raw = 30000;
    mb_core_poll(&core, 11000);
    CHECK(motor_permille == 0);
    adc_raw = 15000;
    mb_core_poll(&core, 80000);
    CHECK(cmd(80000, bare(MB_TARE, 9))->u.tare_result.offset_counts == 15000);
    CHECK(is_ack(cmd(80000, set_limit(10, 10000)), 10));
    CHECK(!(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_LIMIT_TRIPPED));
    adc_raw = 25000; /* 10 N over the new zero: at the limit */
    mb_core_poll(&core, 90000);
    CHECK(!(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_LIMIT_TRIPPED));
    /* the limit holds while not streaming too (idle sampling) */
    cmd(90000, set_stream(11, 0, 0));
    cmd(90000, vibrate(12, 500, 100, 0, 0));
    adc_raw = 26000;
    mb_core_poll(&core, 92000);
    CHECK(motor_permille == 0);
}

static void test_tare_and_status(void) {
    size_t i, statuses = 0;
    current_test = "tare_not_ready";
    {
        mb_config_t cfg;
        mb_hal_t hal = {NULL, NULL, t_adc, t_motor, t_write, NULL, NULL};
        mb_config_default(&cfg);
        out_len = 0;
        mb_core_init(&core, &cfg, &hal, 0);
        CHECK(is_nack(cmd(0, bare(MB_TARE, 1)), 1, MB_NACK_NOT_READY)); /* no sample yet */
    }
    current_test = "tare_rounds_half_to_even";
    setup();
    adc_raw = 3; /* 32 samples of 3 and 32 of 4: mean 3.5 -> 4 */
    mb_core_poll(&core, 32000);
    adc_raw = 4;
    mb_core_poll(&core, 64000);
    CHECK(cmd(64000, bare(MB_TARE, 1))->u.tare_result.offset_counts == 4);
    current_test = "status_every_250ms_and_on_change";
    setup();
    out_len = 0;
    mb_core_poll(&core, 1000000);
    for (i = 0; i < out_len; i++) statuses += out[i].type == MB_STATUS;
    CHECK(statuses == 1); /* one poll, one Status: at most one per poll */
    for (i = 1; i <= 1000; i++) mb_core_poll(&core, 1000000u + 1000u * (uint32_t)i);
    statuses = 0;
    for (i = 0; i < out_len; i++) statuses += out[i].type == MB_STATUS;
    CHECK(statuses == 5);
    CHECK(out[0].u.status.battery_pct == 87);
    cmd(2000000, set_limit(1, 40000));
    cmd(2000000, vibrate(2, 300, 100, 0, 0));
    out_len = 0;
    mb_core_poll(&core, 2000001);
    CHECK(out_len == 1 && out[0].type == MB_STATUS && out[0].u.status.flags == MB_FLAG_MOTOR_ON &&
          out[0].u.status.motor_permille == 300);
}

static void test_ramp_and_sensor_fault(void) {
    mb_config_t cfg;
    mb_hal_t hal = {NULL, NULL, t_adc, t_motor, t_write, t_battery, t_event};
    current_test = "ramp";
    mb_config_default(&cfg);
    cfg.ramp_permille_per_ms = 10; /* 0 -> 1000 in 100 ms */
    adc_raw = 0;
    motor_permille = 0;
    mb_core_init(&core, &cfg, &hal, 0);
    cmd(0, set_limit(1, 40000));
    cmd(0, vibrate(2, 1000, 100, 0, 0));
    CHECK(motor_permille == 0);
    mb_core_poll(&core, 10000);
    CHECK(motor_permille == 100);
    cmd(50000, bare(MB_KEEPALIVE, 3));
    CHECK(motor_permille == 500);
    mb_core_poll(&core, 200000);
    CHECK(motor_permille == 1000);
    cmd(200000, vibrate(4, 200, 100, 0, 0)); /* down: at once */
    CHECK(motor_permille == 200);
    cmd(200000, bare(MB_STOP, 5));
    CHECK(motor_permille == 0);
    current_test = "sensor_fault";
    setup();
    cmd(0, set_limit(1, 40000));
    cmd(0, vibrate(2, 500, 100, 0, 0));
    adc_ok = false;
    mb_core_poll(&core, 2000);
    CHECK(motor_permille == 0);
    CHECK(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_SENSOR_FAULT);
    CHECK(is_nack(cmd(3000, vibrate(3, 500, 100, 0, 0)), 3, MB_NACK_NOT_READY));
    adc_ok = true;
    mb_core_poll(&core, 5000);
    CHECK(!(mb_core_get(&core, MB_GET_FLAGS) & MB_FLAG_SENSOR_FAULT));
    CHECK(is_ack(cmd(5000, vibrate(4, 500, 100, 0, 0)), 4));
}

static void test_serial_path(void) {
    uint8_t stream[3 * MB_MAX_FRAME_LEN + 8];
    uint8_t body[MB_MAX_MESSAGE_LEN];
    size_t n = 0, len, i;
    mb_msg_t m;
    const mb_msg_t *r;
    current_test = "serial";
    setup();
    stream[n++] = 0x11; /* garbage, then a delimiter */
    stream[n++] = 0x00;
    m = set_limit(1, 20000);
    len = mb_encode(&m, body, sizeof body);
    n += mb_frame_encode(body, len, stream + n, sizeof stream - n);
    m = hello(2);
    len = mb_encode(&m, body, sizeof body);
    i = n;
    n += mb_frame_encode(body, len, stream + n, sizeof stream - n);
    stream[i + 2] ^= 0x40; /* a CRC error: no reply */
    out_len = 0;
    for (i = 0; i < n; i++) mb_core_rx_serial(&core, 1000, &stream[i], 1); /* byte by byte */
    r = reply_since(0);
    CHECK(is_ack(r, 1) && out_len == 2); /* one Status, one Ack */
    CHECK(mb_core_get(&core, MB_GET_CRC_ERRORS) == 1);
    CHECK(mb_core_get(&core, MB_GET_BAD_FRAMES) == 1);
    /* an over-long run is dropped whole; the next frame is read */
    memset(stream, 0x55, 300);
    stream[300] = 0;
    m = bare(MB_STOP, 3);
    len = mb_encode(&m, body, sizeof body);
    n = 301 + mb_frame_encode(body, len, stream + 301, sizeof stream - 301);
    out_len = 0;
    mb_core_rx_serial(&core, 2000, stream, n);
    CHECK(is_ack(reply_since(0), 3));
}

int main(void) {
    test_message_vectors();
    test_bad_frames();
    test_rule_vectors();
    test_range_checks();
    test_no_limit_and_ceiling();
    test_repeats();
    test_deadman_and_wrap();
    test_limit_latch();
    test_tare_and_status();
    test_ramp_and_sensor_fault();
    test_serial_path();
    test_patterns();
    if (failures) {
        printf("C TESTS FAILED: %d of %d checks\n", failures, checks);
        return 1;
    }
    printf("C TESTS OK %d checks\n", checks);
    return 0;
}
