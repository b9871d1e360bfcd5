-- Mark a tree dirty ahead of a write (see outbox.py): a recovery hint, so it is
-- written even when Redis is over maxmemory (loaded with `flags=allow-oom`,
-- see scripts.py): a refused write then leaves only this mark, which the
-- sweep drops, while an accepted one never lacks it.
-- KEYS: dirty   ARGV: root, score (µs)
return redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
