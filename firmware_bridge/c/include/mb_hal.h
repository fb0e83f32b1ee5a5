/* The hardware the core runs on, as a few functions a board port provides (the ESP32 port:
 * firmware_bridge/c/port/esp32; the simulator: simulators/c_firmware.py through ctypes).
 * The core never reads a clock: the port passes now_us into every core call. */
#ifndef MB_HAL_H
#define MB_HAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    void *ctx; /* handed back to every function below */
    /* The device clock in microseconds (wraps at 2^32). The port's loop reads it and passes it
     * to the core; the core itself does not call it. May be NULL. */
    uint32_t (*now_us)(void *ctx);
    /* One ADC conversion due at device time t_us: raw counts; *ok = false for a sensor fault
     * (no answer from the ADC). */
    int32_t (*adc_read)(void *ctx, uint32_t t_us, bool *ok);
    /* Drive the motor: 0 = off; otherwise permille (1-1000) at frequency_hz with a waveform
     * (enum mb_waveform). Called only when the output changes. */
    void (*motor_drive)(void *ctx, uint16_t permille, uint16_t frequency_hz, uint8_t waveform);
    /* Send one message (header + payload, at most 244 bytes). Serial ports frame it with
     * mb_frame_encode; BLE ports notify ForceBatch on Force and the rest on Status. */
    void (*transport_write)(void *ctx, const uint8_t *msg, size_t len);
    /* Battery charge in percent (0-100). May be NULL (reported as 100). */
    uint8_t (*battery_pct)(void *ctx);
    /* What the firmware did (enum mb_event, two values; for logs and tests). May be NULL. */
    void (*event)(void *ctx, uint32_t t_us, int code, int32_t a, int32_t b);
} mb_hal_t;

#endif
