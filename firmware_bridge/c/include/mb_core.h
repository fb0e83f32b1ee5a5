/* The reference firmware core (docs/protocol.md "Device behaviour", docs/firmware.md):
 * command handler, sampler, tare, safety layer (hard limit latch, keepalive deadman, range
 * checks, no vibration without a limit, the absolute ceiling, repeated commands, motor ramp),
 * battery and status. State lives in one mb_core_t the port allocates statically; no heap.
 *
 * The port calls mb_core_poll(now_us) often (every millisecond or so) and hands it what the
 * host sent: mb_core_rx_serial (a byte stream, COBS framed) or mb_core_rx_message (one
 * message, a BLE write). Both run the core up to now_us first. */
#ifndef MB_CORE_H
#define MB_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mb_hal.h"
#include "mb_protocol.h"

/* How many commands the core remembers to answer a retry (same seq, same bytes). */
#define MB_REPLY_CACHE 64u
/* Samples a Tare averages. */
#define MB_TARE_WINDOW 64u
/* The longest host -> device message (Vibrate, 13 bytes). */
#define MB_MAX_COMMAND_LEN 13u

typedef struct {
    mb_device_info_t info;      /* what DeviceInfo reports (the factory calibration) */
    uint16_t motor_default_hz;  /* Vibrate frequency 0 means this */
    uint32_t deadman_us;        /* keepalive deadman: 500000 */
    uint32_t status_period_us;  /* Status at least this often: 250000 */
    uint16_t idle_rate_hz;      /* ADC rate while not streaming (the limit holds anyway) */
    /* Motor ramp limit: the output rises by at most this many permille per millisecond
     * (0 = no limit: the motor's own spin-up is the ramp). It always falls at once. */
    uint16_t ramp_permille_per_ms;
} mb_config_t;

enum mb_event {
    MB_EV_MOTOR_OFF = 1,     /* a = enum mb_off_cause */
    MB_EV_VIBRATE = 2,       /* a = permille, b = frequency_hz */
    MB_EV_STOP_RECEIVED = 3,
    MB_EV_SET_LIMIT = 4,     /* a = limit_mn in force */
    MB_EV_TARE = 5,          /* a = new zero (counts) */
    MB_EV_NACK = 6,          /* a = command type, b = code */
    MB_EV_DUPLICATE = 7,     /* a = command type, b = seq */
    MB_EV_LIMIT_TRIPPED = 8, /* a = force in mN against the working zero */
    MB_EV_DEADMAN = 9,       /* a = microseconds since the last accepted command */
    MB_EV_SENSOR_FAULT = 10
};

enum mb_off_cause {
    MB_OFF_STOP = 1,
    MB_OFF_LIMIT = 2,
    MB_OFF_DEADMAN = 3,
    MB_OFF_DURATION = 4,
    MB_OFF_VIBRATE_ZERO = 5,
    MB_OFF_SENSOR = 6
};

/* What mb_core_get reads (for tests, the simulator and a port's diagnostics). */
enum mb_field {
    MB_GET_LIMIT_MN = 1,
    MB_GET_FLAGS,            /* status flags, MOTOR_ON included */
    MB_GET_RATE_HZ,
    MB_GET_SAMPLES_PER_BATCH,
    MB_GET_ZERO_COUNTS,
    MB_GET_MOTOR_PERMILLE,   /* the output now (after the ramp) */
    MB_GET_MOTOR_TARGET_PERMILLE,
    MB_GET_MOTOR_HZ,
    MB_GET_LAST_ACCEPTED_US,
    MB_GET_COMMANDS,
    MB_GET_STOPS,
    MB_GET_DUPLICATES,
    MB_GET_DEADMAN_US,
    MB_GET_MOTOR_DEADLINE_SET, /* 1 if a Vibrate duration is running */
    MB_GET_CRC_ERRORS,
    MB_GET_BAD_FRAMES,
    MB_GET_FRAMES,
    MB_GET_LAST_RAW,
    MB_GET_PATTERN,          /* the id of the pattern playing, -1 for none */
    MB_GET_PATTERN_STEP      /* its step now */
};

/* A stored pattern (version 3); count 0: not defined. */
typedef struct {
    uint8_t count;
    uint8_t loop_from;
    mb_pattern_step_t steps[MB_MAX_PATTERN_STEPS];
} mb_pattern_t;

typedef struct {
    uint16_t seq;
    uint8_t cmd_len;
    uint8_t cmd[MB_MAX_COMMAND_LEN];
    uint8_t reply_type;     /* 0: no reply (Keepalive) */
    uint8_t reply_code;     /* Nack code */
    uint16_t reply_seq;     /* the device seq the reply carried */
    int32_t reply_value;    /* TareResult offset */
} mb_reply_entry_t;

typedef struct {
    mb_config_t cfg;
    mb_hal_t hal;
    /* clock */
    uint32_t now_us;
    /* sampler */
    uint16_t rate_hz;
    uint8_t samples_per_batch;
    uint32_t next_sample_us;
    uint32_t period_frac;    /* remainder accumulator of 1e6 / rate */
    mb_force_batch_t batch;
    uint16_t batch_seq;
    uint16_t other_seq;
    int32_t window[MB_TARE_WINDOW];
    uint8_t window_len;
    uint8_t window_head;
    int32_t last_raw;
    bool have_raw;
    /* calibration and the hard limit */
    int32_t zero_counts;
    uint32_t limit_mn;
    int64_t limit_counts;    /* over when raw - zero > this */
    uint8_t flags;           /* without MOTOR_ON */
    /* motor */
    uint16_t motor_target;
    uint16_t motor_out;
    uint16_t motor_hz;
    uint8_t motor_waveform;
    bool motor_deadline_set;
    uint64_t motor_left_us;
    uint32_t ramp_us;        /* time the ramp has not spent yet */
    uint32_t last_poll_us;
    /* patterns (version 3): the table and the one playing */
    mb_pattern_t patterns[MB_MAX_PATTERNS];
    bool playing;
    uint8_t play_id;
    uint8_t play_step;
    uint16_t play_intensity;
    uint16_t play_cap;
    uint32_t play_left_us;   /* of the step playing */
    /* deadman */
    uint32_t last_accepted_us;
    /* status */
    bool status_sent;
    uint32_t next_status_us;
    uint8_t last_status_flags;
    uint16_t last_status_permille;
    /* repeated commands, oldest first */
    mb_reply_entry_t replies[MB_REPLY_CACHE];
    uint8_t replies_len;
    /* serial input */
    mb_frame_decoder_t rx;
    uint32_t rx_now_us;
    /* counters */
    uint32_t commands;
    uint32_t stops;
    uint32_t duplicates;
} mb_core_t;

/* A config for the sensor ball of the simulator (and a starting point for a port). */
void mb_config_default(mb_config_t *cfg);
void mb_core_init(mb_core_t *c, const mb_config_t *cfg, const mb_hal_t *hal, uint32_t now_us);
/* Run the core up to now_us: samples due, watchdogs, motor ramp, Status. */
void mb_core_poll(mb_core_t *c, uint32_t now_us);
/* One message from the host (BLE: one Command write). */
void mb_core_rx_message(mb_core_t *c, uint32_t now_us, const uint8_t *msg, size_t len);
/* Bytes of the host's serial stream (COBS frames). */
void mb_core_rx_serial(mb_core_t *c, uint32_t now_us, const uint8_t *data, size_t len);
/* A refusal the port decides (BLE: a SetStream whose batch would not fit the MTU). */
void mb_core_nack(mb_core_t *c, uint16_t cmd_seq, uint8_t cmd_type, uint8_t code);
void mb_core_set_deadman_us(mb_core_t *c, uint32_t deadman_us);
int64_t mb_core_get(const mb_core_t *c, int field);
size_t mb_core_size(void);
size_t mb_config_size(void); /* for bindings that lay mb_config_t out themselves */

#endif
