/* The reference firmware core: see include/mb_core.h and docs/protocol.md "Device behaviour".
 * Every decision of the device is here; a port only moves bytes, reads the ADC and drives
 * the motor. Times are device microseconds (u32, wrapping): compared by differences only. */
#include <string.h>

#include "mb_core.h"

#define US_PER_S 1000000u

/* a - b for two wrapping times: negative when a is before b */
static int32_t diff_us(uint32_t a, uint32_t b) {
    uint32_t d = a - b;
    return d <= 0x7FFFFFFFu ? (int32_t)d : -(int32_t)(0xFFFFFFFFu - d) - 1;
}

static void event(mb_core_t *c, int code, int32_t a, int32_t b) {
    if (c->hal.event != NULL) c->hal.event(c->hal.ctx, c->now_us, code, a, b);
}

static void send(mb_core_t *c, const mb_msg_t *m) {
    uint8_t buf[MB_MAX_MESSAGE_LEN];
    size_t n = mb_encode(m, buf, sizeof buf);
    if (n > 0 && c->hal.transport_write != NULL) c->hal.transport_write(c->hal.ctx, buf, n);
}

static uint16_t next_other_seq(mb_core_t *c) {
    uint16_t s = c->other_seq;
    c->other_seq = (uint16_t)(c->other_seq + 1u);
    return s;
}

void mb_config_default(mb_config_t *cfg) {
    memset(cfg, 0, sizeof *cfg);
    memcpy(cfg->info.model, "MBALL-1", 7);
    memcpy(cfg->info.firmware, "1.2.0", 5);
    memcpy(cfg->info.serial_number, "SIM-BALL-0001", 13);
    cfg->info.protocol_version = MB_PATTERNS_VERSION;
    cfg->info.rate_min_hz = 10;
    cfg->info.rate_max_hz = 2000;
    cfg->info.motor_kind = MB_MOTOR_ERM;
    cfg->info.motor_freq_min_hz = 20;
    cfg->info.motor_freq_max_hz = 250;
    cfg->info.cal_scale_counts_per_n = 1000.0f;
    cfg->info.cal_offset_counts = 0;
    cfg->info.limit_max_mn = 150000u;
    cfg->motor_default_hz = 100;
    cfg->deadman_us = 500000u;
    cfg->status_period_us = 250000u;
    cfg->idle_rate_hz = 1000;
    cfg->ramp_permille_per_ms = 0;
}

/* ---- the hard limit ------------------------------------------------------------------- */

static void set_limit_counts(mb_core_t *c) {
    /* over when (raw - zero) / scale * 1000 > limit_mn, i.e. raw - zero > limit * scale / 1000;
     * an integer difference passes a real bound exactly when it passes its floor */
    double bound = (double)c->limit_mn * (double)c->cfg.info.cal_scale_counts_per_n / 1000.0;
    double fl;
    if (bound > 4.0e18) bound = 4.0e18;
    if (bound < -4.0e18) bound = -4.0e18;
    fl = (double)(int64_t)bound;
    if (fl > bound) fl -= 1.0;
    c->limit_counts = (int64_t)fl;
}

static bool over_limit(const mb_core_t *c, int32_t raw) {
    if (c->limit_mn == 0) return false;
    return (int64_t)raw - (int64_t)c->zero_counts > c->limit_counts;
}

static void clear_limit_if_safe(mb_core_t *c) {
    int32_t raw = c->have_raw ? c->last_raw : c->zero_counts;
    if ((c->flags & MB_FLAG_LIMIT_TRIPPED) && !over_limit(c, raw))
        c->flags = (uint8_t)(c->flags & ~MB_FLAG_LIMIT_TRIPPED);
}

/* ---- motor ---------------------------------------------------------------------------- */

static void drive(mb_core_t *c, uint16_t permille) {
    if (permille == c->motor_out) return;
    c->motor_out = permille;
    if (c->hal.motor_drive != NULL)
        c->hal.motor_drive(c->hal.ctx, permille, permille ? c->motor_hz : 0, c->motor_waveform);
}

/* the motor runs, or a pattern plays (even in a step at 0) */
static bool motor_on(const mb_core_t *c) {
    return c->motor_target > 0 || c->motor_out > 0 || c->playing;
}

static void motor_off(mb_core_t *c, int cause) {
    bool was_on = motor_on(c);
    c->playing = false;
    c->motor_target = 0;
    c->motor_deadline_set = false;
    c->ramp_us = 0;
    drive(c, 0);
    if (was_on) event(c, MB_EV_MOTOR_OFF, cause, 0);
}

/* the output follows the target: at once down, up at most ramp permille per ms */
static void ramp(mb_core_t *c, uint32_t elapsed_us) {
    uint32_t step;
    uint32_t out = c->motor_out;
    if (c->motor_target <= c->motor_out || c->cfg.ramp_permille_per_ms == 0) {
        drive(c, c->motor_target);
        c->ramp_us = 0;
        return;
    }
    c->ramp_us += elapsed_us;
    step = (c->ramp_us / 1000u) * c->cfg.ramp_permille_per_ms;
    if (step == 0) return;
    c->ramp_us %= 1000u;
    out = out + step > c->motor_target ? c->motor_target : out + step;
    drive(c, (uint16_t)out);
}

/* min(level * intensity / 1000, cap), half up: docs/protocol.md, PlayPattern */
static uint16_t pattern_output(const mb_core_t *c) {
    const mb_pattern_step_t *s = &c->patterns[c->play_id].steps[c->play_step];
    uint32_t out = ((uint32_t)s->level_permille * c->play_intensity + 500u) / 1000u;
    return (uint16_t)(out < c->play_cap ? out : c->play_cap);
}

/* the playing pattern moves on by elapsed_us: to its next steps, looping from loop_from */
static void pattern_advance(mb_core_t *c, uint32_t elapsed_us) {
    const mb_pattern_t *p;
    if (!c->playing) return;
    p = &c->patterns[c->play_id];
    while (elapsed_us >= c->play_left_us) {
        elapsed_us -= c->play_left_us;
        c->play_step++;
        if (c->play_step >= p->count) c->play_step = p->loop_from;
        c->play_left_us = (uint32_t)p->steps[c->play_step].duration_ms * 1000u;
    }
    c->play_left_us -= elapsed_us;
    c->motor_target = pattern_output(c);
}

/* ---- time ------------------------------------------------------------------------------ */

static void watchdogs(mb_core_t *c, uint32_t t_us, uint32_t elapsed_us) {
    c->now_us = t_us;
    pattern_advance(c, elapsed_us);
    if (motor_on(c)) {
        uint32_t quiet = t_us - c->last_accepted_us;
        if (quiet >= c->cfg.deadman_us) {
            c->flags |= MB_FLAG_KEEPALIVE_LOST;
            event(c, MB_EV_DEADMAN, (int32_t)(quiet > 0x7FFFFFFFu ? 0x7FFFFFFFu : quiet), 0);
            motor_off(c, MB_OFF_DEADMAN);
        }
    }
    if (c->motor_deadline_set) {
        if (c->motor_left_us <= elapsed_us) {
            c->motor_left_us = 0;
            motor_off(c, MB_OFF_DURATION);
        } else {
            c->motor_left_us -= elapsed_us;
        }
    }
    ramp(c, elapsed_us);
}

static uint32_t period_step(mb_core_t *c, uint16_t rate_hz) {
    uint32_t step = US_PER_S / rate_hz;
    c->period_frac += US_PER_S % rate_hz;
    if (c->period_frac >= rate_hz) {
        c->period_frac -= rate_hz;
        step++;
    }
    return step;
}

static void sample(mb_core_t *c, uint32_t t_us) {
    bool ok = true;
    int32_t raw;
    uint32_t elapsed = t_us - c->last_poll_us;
    watchdogs(c, t_us, elapsed);
    c->last_poll_us = t_us;
    raw = c->hal.adc_read != NULL ? c->hal.adc_read(c->hal.ctx, t_us, &ok) : 0;
    if (!ok) {
        /* no reading, no limit: fail closed */
        if (!(c->flags & MB_FLAG_SENSOR_FAULT)) event(c, MB_EV_SENSOR_FAULT, 0, 0);
        c->flags |= MB_FLAG_SENSOR_FAULT;
        motor_off(c, MB_OFF_SENSOR);
        return;
    }
    c->flags = (uint8_t)(c->flags & ~MB_FLAG_SENSOR_FAULT);
    c->last_raw = raw;
    c->have_raw = true;
    c->window[c->window_head] = raw;
    c->window_head = (uint8_t)((c->window_head + 1u) % MB_TARE_WINDOW);
    if (c->window_len < MB_TARE_WINDOW) c->window_len++;
    if (over_limit(c, raw) && !(c->flags & MB_FLAG_LIMIT_TRIPPED)) {
        double mn = ((double)raw - (double)c->zero_counts) * 1000.0 /
                    (double)c->cfg.info.cal_scale_counts_per_n;
        if (mn > 2.0e9) mn = 2.0e9;
        if (mn < -2.0e9) mn = -2.0e9;
        c->flags |= MB_FLAG_LIMIT_TRIPPED;
        event(c, MB_EV_LIMIT_TRIPPED, (int32_t)mn, 0);
        motor_off(c, MB_OFF_LIMIT);
    }
    if (c->rate_hz == 0) return;
    if (c->batch.count == 0) c->batch.t_us = t_us;
    c->batch.samples[c->batch.count++] = raw;
    if (c->batch.count >= c->samples_per_batch) {
        mb_msg_t m;
        m.type = MB_FORCE_BATCH;
        m.seq = c->batch_seq;
        m.u.force_batch = c->batch;
        m.u.force_batch.rate_hz = c->rate_hz;
        send(c, &m);
        c->batch_seq = (uint16_t)(c->batch_seq + 1u);
        c->batch.count = 0;
    }
}

static void status_tick(mb_core_t *c, uint32_t now_us) {
    uint8_t flags = (uint8_t)(c->flags | (c->motor_out > 0 || c->playing ? MB_FLAG_MOTOR_ON : 0));
    if (!c->status_sent || diff_us(now_us, c->next_status_us) >= 0 ||
        flags != c->last_status_flags || c->motor_out != c->last_status_permille) {
        mb_msg_t m;
        c->status_sent = true;
        c->last_status_flags = flags;
        c->last_status_permille = c->motor_out;
        c->next_status_us = now_us + c->cfg.status_period_us;
        m.type = MB_STATUS;
        m.seq = next_other_seq(c);
        m.u.status.battery_pct = c->hal.battery_pct != NULL ? c->hal.battery_pct(c->hal.ctx) : 100;
        m.u.status.motor_permille = c->motor_out;
        m.u.status.flags = flags;
        send(c, &m);
    }
}

void mb_core_poll(mb_core_t *c, uint32_t now_us) {
    uint16_t rate = c->rate_hz ? c->rate_hz : c->cfg.idle_rate_hz;
    if (diff_us(now_us, c->now_us) < 0) return; /* time does not run backwards */
    if (rate > 0) {
        while (diff_us(now_us, c->next_sample_us) >= 0) {
            uint32_t t = c->next_sample_us;
            sample(c, t);
            c->next_sample_us = t + period_step(c, rate);
        }
    }
    watchdogs(c, now_us, now_us - c->last_poll_us);
    c->last_poll_us = now_us;
    status_tick(c, now_us);
}

/* ---- commands --------------------------------------------------------------------------- */

typedef struct {
    uint8_t type; /* 0: none */
    uint8_t code;
    uint16_t seq;
    int32_t value;
} reply_t;

static void send_reply(mb_core_t *c, uint16_t cmd_seq, uint8_t cmd_type, const reply_t *r) {
    mb_msg_t m;
    if (r->type == 0) return;
    m.type = r->type;
    m.seq = r->seq;
    switch (r->type) {
    case MB_ACK:
        m.u.ack.cmd_seq = cmd_seq;
        m.u.ack.cmd_type = cmd_type;
        break;
    case MB_NACK:
        m.u.nack.cmd_seq = cmd_seq;
        m.u.nack.cmd_type = cmd_type;
        m.u.nack.code = r->code;
        break;
    case MB_TARE_RESULT:
        m.u.tare_result.cmd_seq = cmd_seq;
        m.u.tare_result.offset_counts = r->value;
        break;
    case MB_DEVICE_INFO: m.u.device_info = c->cfg.info; break;
    default: return;
    }
    send(c, &m);
}

static reply_t nack(mb_core_t *c, uint8_t type, uint8_t code) {
    reply_t r;
    r.type = MB_NACK;
    r.code = code;
    r.seq = next_other_seq(c);
    r.value = 0;
    event(c, MB_EV_NACK, type, code);
    return r;
}

static reply_t simple(mb_core_t *c, uint8_t type) {
    reply_t r;
    r.type = type;
    r.code = 0;
    r.seq = next_other_seq(c);
    r.value = 0;
    return r;
}

/* Python's round(): half to even */
static int32_t mean_rounded(const int32_t *v, unsigned n) {
    int64_t sum = 0, q, r;
    unsigned i;
    for (i = 0; i < n; i++) sum += v[i];
    q = sum / (int64_t)n;
    r = sum % (int64_t)n;
    if (r < 0) {
        r += (int64_t)n;
        q -= 1;
    }
    if (2 * r > (int64_t)n || (2 * r == (int64_t)n && (q % 2) != 0)) q += 1;
    return (int32_t)q;
}

static reply_t handle(mb_core_t *c, const mb_msg_t *m) {
    reply_t none;
    memset(&none, 0, sizeof none);
    switch (m->type) {
    case MB_HELLO:
        if (m->u.hello.protocol_version != MB_PROTOCOL_VERSION)
            return nack(c, m->type, MB_NACK_BAD_VERSION);
        if (c->playing) motor_off(c, MB_OFF_STOP); /* the table it plays is forgotten */
        memset(c->patterns, 0, sizeof c->patterns);
        return simple(c, MB_DEVICE_INFO);
    case MB_SET_STREAM: {
        uint16_t rate = m->u.set_stream.rate_hz;
        uint8_t spb = m->u.set_stream.samples_per_batch;
        if (rate != 0 && !(c->cfg.info.rate_min_hz <= rate && rate <= c->cfg.info.rate_max_hz &&
                           spb >= 1 && spb <= MB_MAX_SAMPLES_PER_BATCH))
            return nack(c, m->type, MB_NACK_OUT_OF_RANGE);
        c->rate_hz = rate;
        c->samples_per_batch = spb;
        c->batch.count = 0;
        c->period_frac = 0;
        /* streaming starts with a sample now; idle sampling goes on at its own rate */
        c->next_sample_us = rate ? c->now_us : c->now_us + (c->cfg.idle_rate_hz
                                                                ? US_PER_S / c->cfg.idle_rate_hz
                                                                : 0u);
        return simple(c, MB_ACK);
    }
    case MB_VIBRATE: {
        uint16_t permille = m->u.vibrate.intensity_permille;
        uint16_t hz = m->u.vibrate.frequency_hz ? m->u.vibrate.frequency_hz : c->cfg.motor_default_hz;
        if (permille > 1000u || hz < c->cfg.info.motor_freq_min_hz ||
            hz > c->cfg.info.motor_freq_max_hz || m->u.vibrate.waveform > MB_WAVE_SINE_SWELL ||
            c->cfg.info.motor_kind == MB_MOTOR_NONE)
            return nack(c, m->type, MB_NACK_OUT_OF_RANGE);
        if (permille > 0 && c->limit_mn == 0) return nack(c, m->type, MB_NACK_NO_LIMIT);
        if (permille > 0 && (c->flags & MB_FLAG_LIMIT_TRIPPED))
            return nack(c, m->type, MB_NACK_LIMIT_TRIPPED);
        if (permille > 0 && (c->flags & MB_FLAG_SENSOR_FAULT))
            return nack(c, m->type, MB_NACK_NOT_READY);
        c->playing = false;
        c->motor_hz = hz;
        c->motor_waveform = m->u.vibrate.waveform;
        c->motor_target = permille;
        c->motor_deadline_set = m->u.vibrate.duration_ms != 0 && permille > 0;
        c->motor_left_us = (uint64_t)m->u.vibrate.duration_ms * 1000u;
        if (c->motor_out > 0 && permille > 0 && c->motor_out <= permille) {
            /* a new frequency or waveform at once, the level through the ramp */
            uint16_t out = c->motor_out;
            c->motor_out = 0;
            drive(c, out);
        }
        ramp(c, 0);
        event(c, MB_EV_VIBRATE, permille, hz);
        if (permille == 0) {
            c->motor_deadline_set = false;
            event(c, MB_EV_MOTOR_OFF, MB_OFF_VIBRATE_ZERO, 0);
        }
        return simple(c, MB_ACK);
    }
    case MB_PATTERN_DEFINE: {
        const uint8_t n = m->u.pattern_define.count;
        unsigned i;
        if (c->cfg.info.protocol_version < MB_PATTERNS_VERSION)
            return nack(c, m->type, MB_NACK_UNKNOWN_TYPE);
        if (m->u.pattern_define.pattern_id >= MB_MAX_PATTERNS || n < 1u ||
            n > MB_MAX_PATTERN_STEPS || m->u.pattern_define.loop_from >= n)
            return nack(c, m->type, MB_NACK_OUT_OF_RANGE);
        for (i = 0; i < n; i++)
            if (m->u.pattern_define.steps[i].level_permille > 1000u ||
                m->u.pattern_define.steps[i].duration_ms < 1u)
                return nack(c, m->type, MB_NACK_OUT_OF_RANGE);
        if (c->playing && c->play_id == m->u.pattern_define.pattern_id)
            return nack(c, m->type, MB_NACK_NOT_READY);
        c->patterns[m->u.pattern_define.pattern_id].count = n;
        c->patterns[m->u.pattern_define.pattern_id].loop_from = m->u.pattern_define.loop_from;
        memcpy(c->patterns[m->u.pattern_define.pattern_id].steps, m->u.pattern_define.steps,
               n * sizeof m->u.pattern_define.steps[0]);
        return simple(c, MB_ACK);
    }
    case MB_PLAY_PATTERN: {
        uint8_t id = m->u.play_pattern.pattern_id;
        uint16_t intensity = m->u.play_pattern.intensity_permille;
        uint16_t cap = m->u.play_pattern.cap_permille;
        uint16_t hz = m->u.play_pattern.frequency_hz ? m->u.play_pattern.frequency_hz
                                                     : c->cfg.motor_default_hz;
        bool on = intensity > 0 && cap > 0;
        if (c->cfg.info.protocol_version < MB_PATTERNS_VERSION)
            return nack(c, m->type, MB_NACK_UNKNOWN_TYPE);
        if (id >= MB_MAX_PATTERNS || intensity > 1000u || cap > 1000u ||
            hz < c->cfg.info.motor_freq_min_hz || hz > c->cfg.info.motor_freq_max_hz ||
            c->cfg.info.motor_kind == MB_MOTOR_NONE)
            return nack(c, m->type, MB_NACK_OUT_OF_RANGE);
        if (on && c->patterns[id].count == 0) return nack(c, m->type, MB_NACK_NOT_READY);
        if (on && c->limit_mn == 0) return nack(c, m->type, MB_NACK_NO_LIMIT);
        if (on && (c->flags & MB_FLAG_LIMIT_TRIPPED)) return nack(c, m->type, MB_NACK_LIMIT_TRIPPED);
        if (on && (c->flags & MB_FLAG_SENSOR_FAULT)) return nack(c, m->type, MB_NACK_NOT_READY);
        if (!on) {
            motor_off(c, MB_OFF_VIBRATE_ZERO);
            return simple(c, MB_ACK);
        }
        c->motor_deadline_set = false;
        c->motor_waveform = MB_WAVE_CONTINUOUS;
        c->playing = true;
        c->play_id = id;
        c->play_step = 0;
        c->play_intensity = intensity;
        c->play_cap = cap;
        c->play_left_us = (uint32_t)c->patterns[id].steps[0].duration_ms * 1000u;
        c->motor_target = pattern_output(c);
        if (c->motor_out > 0 && hz != c->motor_hz) {
            /* a new frequency at once, the level through the ramp */
            uint16_t out = c->motor_out < c->motor_target ? c->motor_out : c->motor_target;
            c->motor_hz = hz;
            c->motor_out = 0;
            drive(c, out);
        }
        c->motor_hz = hz;
        ramp(c, 0);
        event(c, MB_EV_VIBRATE, c->motor_target, hz);
        return simple(c, MB_ACK);
    }
    case MB_STOP:
        c->stops++;
        motor_off(c, MB_OFF_STOP);
        event(c, MB_EV_STOP_RECEIVED, 0, 0);
        clear_limit_if_safe(c);
        return simple(c, MB_ACK);
    case MB_KEEPALIVE: return none;
    case MB_SET_LIMIT:
        if (m->u.set_limit.limit_mn == 0) return nack(c, m->type, MB_NACK_OUT_OF_RANGE);
        c->limit_mn = m->u.set_limit.limit_mn < c->cfg.info.limit_max_mn
                          ? m->u.set_limit.limit_mn
                          : c->cfg.info.limit_max_mn;
        set_limit_counts(c);
        event(c, MB_EV_SET_LIMIT, (int32_t)(c->limit_mn > 0x7FFFFFFFu ? 0x7FFFFFFFu : c->limit_mn), 0);
        clear_limit_if_safe(c);
        return simple(c, MB_ACK);
    case MB_TARE: {
        reply_t r;
        if (c->window_len == 0) return nack(c, m->type, MB_NACK_NOT_READY);
        c->zero_counts = mean_rounded(c->window, c->window_len);
        event(c, MB_EV_TARE, c->zero_counts, 0);
        r = simple(c, MB_TARE_RESULT);
        r.value = c->zero_counts;
        return r;
    }
    default: return nack(c, m->type, MB_NACK_UNKNOWN_TYPE);
    }
}

static mb_reply_entry_t *find_reply(mb_core_t *c, uint16_t seq) {
    unsigned i;
    for (i = 0; i < c->replies_len; i++)
        if (c->replies[i].seq == seq) return &c->replies[i];
    return NULL;
}

static void remember(mb_core_t *c, uint16_t seq, const uint8_t *msg, size_t len, const reply_t *r) {
    mb_reply_entry_t *e = find_reply(c, seq);
    if (e != NULL) {
        size_t at = (size_t)(e - c->replies);
        memmove(&c->replies[at], &c->replies[at + 1],
                (c->replies_len - at - 1u) * sizeof c->replies[0]);
        c->replies_len--;
    }
    if (c->replies_len == MB_REPLY_CACHE) {
        memmove(&c->replies[0], &c->replies[1], (MB_REPLY_CACHE - 1u) * sizeof c->replies[0]);
        c->replies_len--;
    }
    e = &c->replies[c->replies_len++];
    memset(e, 0, sizeof *e);
    e->seq = seq;
    e->cmd_len = (uint8_t)len;
    memcpy(e->cmd, msg, len);
    e->reply_type = r->type;
    e->reply_code = r->code;
    e->reply_seq = r->seq;
    e->reply_value = r->value;
}

void mb_core_rx_message(mb_core_t *c, uint32_t now_us, const uint8_t *msg, size_t len) {
    mb_msg_t m;
    reply_t r;
    int rc;
    mb_reply_entry_t *e;
    mb_core_poll(c, now_us);
    rc = mb_decode(msg, len, &m);
    if (rc == MB_DECODE_NO_HEADER) return; /* nothing to answer */
    c->commands++;
    if (rc != MB_DECODE_OK) {
        /* a frame that does not decode: refused, and no sign of life */
        r.type = MB_NACK;
        r.code = (uint8_t)rc;
        r.seq = next_other_seq(c);
        send_reply(c, (uint16_t)(msg[2] | (uint16_t)(msg[3] << 8)), msg[1], &r);
        return;
    }
    if (m.type >= 0x80) {
        r = nack(c, m.type, MB_NACK_UNKNOWN_TYPE);
        send_reply(c, m.seq, m.type, &r);
        return;
    }
    e = find_reply(c, m.seq);
    if (m.type != MB_HELLO && m.type != MB_PATTERN_DEFINE && e != NULL && e->cmd_len == len && memcmp(e->cmd, msg, len) == 0) {
        /* a retry: the same reply, no second action, no keepalive */
        c->duplicates++;
        event(c, MB_EV_DUPLICATE, m.type, m.seq);
        r.type = e->reply_type;
        r.code = e->reply_code;
        r.seq = e->reply_seq;
        r.value = e->reply_value;
        send_reply(c, m.seq, m.type, &r);
        return;
    }
    if (m.type == MB_HELLO) c->replies_len = 0;
    r = handle(c, &m);
    if (r.type != MB_NACK && m.type != MB_PATTERN_DEFINE) {
        /* accepted: only now a sign of life (not a PatternDefine: it is not remembered for
         * repeats, so a relay replaying one must not keep a motor running) */
        c->last_accepted_us = now_us;
        c->flags = (uint8_t)(c->flags & ~MB_FLAG_KEEPALIVE_LOST);
    }
    /* PatternDefine (up to 244 bytes) is not remembered: a repeat stores the same steps
     * again, which changes nothing */
    if (len <= MB_MAX_COMMAND_LEN) remember(c, m.seq, msg, len, &r);
    send_reply(c, m.seq, m.type, &r);
}

static void serial_sink(void *ctx, const uint8_t *msg, size_t len) {
    mb_core_t *c = (mb_core_t *)ctx;
    mb_core_rx_message(c, c->rx_now_us, msg, len);
}

void mb_core_rx_serial(mb_core_t *c, uint32_t now_us, const uint8_t *data, size_t len) {
    mb_core_poll(c, now_us);
    c->rx_now_us = now_us;
    mb_frame_feed(&c->rx, data, len, serial_sink, c);
}

void mb_core_nack(mb_core_t *c, uint16_t cmd_seq, uint8_t cmd_type, uint8_t code) {
    reply_t r = nack(c, cmd_type, code);
    send_reply(c, cmd_seq, cmd_type, &r);
}

/* ---- setup and inspection ------------------------------------------------------------- */

void mb_core_init(mb_core_t *c, const mb_config_t *cfg, const mb_hal_t *hal, uint32_t now_us) {
    memset(c, 0, sizeof *c);
    c->cfg = *cfg;
    c->hal = *hal;
    c->now_us = now_us;
    c->last_poll_us = now_us;
    c->last_accepted_us = now_us;
    c->zero_counts = cfg->info.cal_offset_counts;
    c->next_sample_us = now_us + (cfg->idle_rate_hz ? US_PER_S / cfg->idle_rate_hz : 0u);
    mb_frame_decoder_init(&c->rx);
}

void mb_core_set_deadman_us(mb_core_t *c, uint32_t deadman_us) { c->cfg.deadman_us = deadman_us; }

int64_t mb_core_get(const mb_core_t *c, int field) {
    switch (field) {
    case MB_GET_LIMIT_MN: return c->limit_mn;
    case MB_GET_FLAGS: return c->flags | (c->motor_out > 0 || c->playing ? MB_FLAG_MOTOR_ON : 0);
    case MB_GET_RATE_HZ: return c->rate_hz;
    case MB_GET_SAMPLES_PER_BATCH: return c->samples_per_batch;
    case MB_GET_ZERO_COUNTS: return c->zero_counts;
    case MB_GET_MOTOR_PERMILLE: return c->motor_out;
    case MB_GET_MOTOR_TARGET_PERMILLE: return c->motor_target;
    case MB_GET_MOTOR_HZ: return c->motor_hz;
    case MB_GET_LAST_ACCEPTED_US: return c->last_accepted_us;
    case MB_GET_COMMANDS: return c->commands;
    case MB_GET_STOPS: return c->stops;
    case MB_GET_DUPLICATES: return c->duplicates;
    case MB_GET_DEADMAN_US: return c->cfg.deadman_us;
    case MB_GET_MOTOR_DEADLINE_SET: return c->motor_deadline_set ? 1 : 0;
    case MB_GET_CRC_ERRORS: return c->rx.stats.crc_errors;
    case MB_GET_BAD_FRAMES: return c->rx.stats.bad_frames;
    case MB_GET_FRAMES: return c->rx.stats.frames;
    case MB_GET_LAST_RAW: return c->last_raw;
    case MB_GET_PATTERN: return c->playing ? c->play_id : -1;
    case MB_GET_PATTERN_STEP: return c->play_step;
    default: return -1;
    }
}

size_t mb_core_size(void) { return sizeof(mb_core_t); }

size_t mb_config_size(void) { return sizeof(mb_config_t); }
