// massagectl reference firmware: the ESP32 board port (Arduino core for ESP32 3.0.x,
// NimBLE-Arduino 1.4.x, bogde/HX711 0.7.5). Only the HAL, the BLE glue and USB serial live
// here; every decision (range checks, limit, deadman, repeats, tare, sampling, status) is in
// the tested core (firmware_bridge/c/src). NOT compiled by massagectl's CI: see
// docs/firmware.md for the wiring, the libraries and the build steps.
#include <Arduino.h>
#include <HX711.h>
#include <NimBLEDevice.h>

extern "C" {
#include "mb_core.h"
}

// ---- wiring (docs/firmware.md) ----------------------------------------------------------
static const int PIN_HX711_DOUT = 4;
static const int PIN_HX711_SCK = 5;
static const int PIN_MOTOR_PWM = 18;  // gate of the motor's logic-level MOSFET
static const int PIN_BATTERY = 1;     // battery through a 100k/100k divider
static const uint32_t MOTOR_PWM_HZ = 20000;
static const uint8_t MOTOR_PWM_BITS = 10;

// ---- our GATT table (firmware_bridge/gatt.py) ----------------------------------------------
static const char *SERVICE_UUID = "7e0f1a00-5b2c-4f6e-9d3a-6d617373a9e0";
static const char *FORCE_UUID = "7e0f1a01-5b2c-4f6e-9d3a-6d617373a9e0";
static const char *COMMAND_UUID = "7e0f1a02-5b2c-4f6e-9d3a-6d617373a9e0";
static const char *STATUS_UUID = "7e0f1a03-5b2c-4f6e-9d3a-6d617373a9e0";
static const char *ADVERTISED_NAME = "MBALL";  // at most 8 characters

static mb_core_t core;  // all the firmware's state, static
static HX711 adc;
static NimBLECharacteristic *force_chr;
static NimBLECharacteristic *status_chr;
static NimBLECharacteristic *battery_chr;
static volatile bool ble_connected = false;
static int32_t last_raw = 0;
static uint32_t last_ready_us = 0;

// BLE writes arrive on the NimBLE host task: queued here, handed to the core in loop().
struct Pending { uint8_t len; uint8_t data[MB_MAX_MESSAGE_LEN]; };
static Pending queue[8];
static volatile uint8_t q_head = 0, q_tail = 0;
static portMUX_TYPE q_lock = portMUX_INITIALIZER_UNLOCKED;

// ---- HAL ------------------------------------------------------------------------------------
static uint32_t hal_now_us(void *) { return (uint32_t)micros(); }  // wraps at 2^32, as the core expects

static int32_t hal_adc_read(void *, uint32_t t_us, bool *ok) {
  // The HX711 converts at its own 80 Hz: a sample due before a new conversion repeats the
  // last one; no conversion for 100 ms is a sensor fault (the core stops the motor).
  if (adc.is_ready()) {
    last_raw = adc.read();
    last_ready_us = t_us;
  }
  *ok = (uint32_t)(t_us - last_ready_us) < 100000u;
  return last_raw;
}

static void hal_motor_drive(void *, uint16_t permille, uint16_t, uint8_t) {
  // An ERM: the duty is the level; its speed (frequency) follows the voltage.
  ledcWrite(PIN_MOTOR_PWM, (uint32_t)permille * ((1u << MOTOR_PWM_BITS) - 1u) / 1000u);
}

static void hal_transport_write(void *, const uint8_t *msg, size_t len) {
  uint8_t frame[MB_MAX_FRAME_LEN];
  size_t n = mb_frame_encode(msg, len, frame, sizeof frame);
  if (n > 0 && Serial) Serial.write(frame, n);
  if (ble_connected) {
    NimBLECharacteristic *chr = msg[1] == MB_FORCE_BATCH ? force_chr : status_chr;
    chr->setValue(msg, len);
    chr->notify();
  }
}

static uint8_t hal_battery_pct(void *) {
  uint32_t mv = analogReadMilliVolts(PIN_BATTERY) * 2u;  // the divider halves it
  if (mv <= 3300u) return 0;
  if (mv >= 4150u) return 100;
  return (uint8_t)((mv - 3300u) * 100u / 850u);  // a LiPo, roughly linear
}

// ---- BLE glue ------------------------------------------------------------------------------
class ServerCallbacks : public NimBLEServerCallbacks {
  void onConnect(NimBLEServer *) override { ble_connected = true; }
  void onDisconnect(NimBLEServer *) override {
    ble_connected = false;
    NimBLEDevice::startAdvertising();  // the deadman stops the motor on its own
  }
};

class CommandCallbacks : public NimBLECharacteristicCallbacks {
  void onWrite(NimBLECharacteristic *chr) override {
    NimBLEAttValue v = chr->getValue();
    if (v.length() == 0 || v.length() > MB_MAX_MESSAGE_LEN) return;
    portENTER_CRITICAL(&q_lock);
    uint8_t next = (uint8_t)((q_head + 1u) % 8u);
    if (next != q_tail) {  // full: dropped; the host sends it again (same seq)
      queue[q_head].len = (uint8_t)v.length();
      memcpy(queue[q_head].data, v.data(), v.length());
      q_head = next;
    }
    portEXIT_CRITICAL(&q_lock);
  }
};

static void ble_setup(const mb_config_t &cfg) {
  NimBLEDevice::init(ADVERTISED_NAME);
  NimBLEDevice::setMTU(247);
  NimBLEServer *server = NimBLEDevice::createServer();
  server->setCallbacks(new ServerCallbacks());
  NimBLEService *svc = server->createService(SERVICE_UUID);
  force_chr = svc->createCharacteristic(FORCE_UUID, NIMBLE_PROPERTY::NOTIFY);
  NimBLECharacteristic *cmd = svc->createCharacteristic(
      COMMAND_UUID, NIMBLE_PROPERTY::WRITE | NIMBLE_PROPERTY::WRITE_NR);
  cmd->setCallbacks(new CommandCallbacks());
  status_chr = svc->createCharacteristic(STATUS_UUID, NIMBLE_PROPERTY::READ | NIMBLE_PROPERTY::NOTIFY);
  svc->start();
  NimBLEService *bas = server->createService("180F");
  battery_chr = bas->createCharacteristic("2A19", NIMBLE_PROPERTY::READ | NIMBLE_PROPERTY::NOTIFY);
  bas->start();
  NimBLEService *dis = server->createService("180A");
  dis->createCharacteristic("2A29", NIMBLE_PROPERTY::READ)->setValue("massagectl");
  dis->createCharacteristic("2A24", NIMBLE_PROPERTY::READ)->setValue(cfg.info.model);
  dis->createCharacteristic("2A25", NIMBLE_PROPERTY::READ)->setValue(cfg.info.serial_number);
  dis->createCharacteristic("2A26", NIMBLE_PROPERTY::READ)->setValue(cfg.info.firmware);
  dis->start();
  NimBLEAdvertising *adv = NimBLEDevice::getAdvertising();
  adv->addServiceUUID(SERVICE_UUID);
  adv->setName(ADVERTISED_NAME);
  adv->start();
}

// A SetStream whose batch would not fit one notification at this MTU is refused here (the
// one check that depends on the transport), as the simulated peripheral does.
static bool batch_fits_mtu(const uint8_t *msg, size_t len) {
  if (len != 7 || msg[0] != MB_PROTOCOL_VERSION || msg[1] != MB_SET_STREAM) return true;
  uint16_t mtu = NimBLEDevice::getServer()->getPeerMTU(0);
  size_t value_max = mtu > 3 ? mtu - 3u : 20u;
  return (size_t)(MB_HEADER_LEN + 7u + 4u * msg[6]) <= value_max;
}

// ---- Arduino ---------------------------------------------------------------------------------
void setup() {
  Serial.begin(115200);  // USB CDC: the baud rate is not used
  adc.begin(PIN_HX711_DOUT, PIN_HX711_SCK);
  ledcAttach(PIN_MOTOR_PWM, MOTOR_PWM_HZ, MOTOR_PWM_BITS);
  ledcWrite(PIN_MOTOR_PWM, 0);

  mb_config_t cfg;
  mb_config_default(&cfg);
  memset(cfg.info.model, 0, sizeof cfg.info.model);
  memcpy(cfg.info.model, "MBALL-ESP32", 11);
  memset(cfg.info.serial_number, 0, sizeof cfg.info.serial_number);
  snprintf(cfg.info.serial_number, sizeof cfg.info.serial_number, "%012llX", ESP.getEfuseMac());
  cfg.info.rate_min_hz = 10;
  cfg.info.rate_max_hz = 80;  // the HX711 with RATE high
  cfg.info.motor_freq_min_hz = 100;
  cfg.info.motor_freq_max_hz = 250;
  cfg.motor_default_hz = 170;
  // Factory calibration: measured once per board (docs/firmware.md, "Calibration").
  cfg.info.cal_scale_counts_per_n = 10500.0f;
  cfg.info.cal_offset_counts = 0;
  cfg.idle_rate_hz = 80;
  cfg.ramp_permille_per_ms = 10;  // 0 -> full in 100 ms

  mb_hal_t hal = {nullptr, hal_now_us, hal_adc_read, hal_motor_drive, hal_transport_write,
                  hal_battery_pct, nullptr};
  mb_core_init(&core, &cfg, &hal, hal_now_us(nullptr));
  ble_setup(cfg);
}

void loop() {
  uint8_t buf[64];
  uint32_t now = hal_now_us(nullptr);
  size_t n = 0;
  while (Serial.available() && n < sizeof buf) buf[n++] = (uint8_t)Serial.read();
  if (n > 0) mb_core_rx_serial(&core, now, buf, n);
  while (q_tail != q_head) {
    Pending p;
    portENTER_CRITICAL(&q_lock);
    p = queue[q_tail];
    q_tail = (uint8_t)((q_tail + 1u) % 8u);
    portEXIT_CRITICAL(&q_lock);
    if (batch_fits_mtu(p.data, p.len)) {
      mb_core_rx_message(&core, now, p.data, p.len);
    } else {
      mb_core_poll(&core, now);
      mb_core_nack(&core, (uint16_t)(p.data[2] | (p.data[3] << 8)), p.data[1], MB_NACK_OUT_OF_RANGE);
    }
  }
  mb_core_poll(&core, now);
  static uint32_t battery_at = 0;
  if (ble_connected && now - battery_at > 10000000u) {
    battery_at = now;
    uint8_t pct = hal_battery_pct(nullptr);
    battery_chr->setValue(&pct, 1);
    battery_chr->notify();
  }
}
