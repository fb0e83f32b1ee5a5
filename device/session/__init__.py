"""Device session: handshake, stream, keepalive, commands; reconnect on a lost BLE link."""
