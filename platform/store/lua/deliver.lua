-- A timer fired (a delay): append its response once and wake the workflow.
-- Idempotent through the `done` hash; the writer then delivers the tree's outbox.
-- KEYS: state, log, done, outbox
-- ARGV: response-id, response-event-json, now, wake-msg
return deliver(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
