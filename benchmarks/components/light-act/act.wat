;; The benchmarks' trivial activity without an interpreter: the same world
;; (`bench:act/bench-activities@1.0.0`) as ../bench-act/app.py.
;;
;; Canonical ABI (core names of wit-component's legacy mangling):
;;   bench:act/trivial@1.0.0#echo  echo: func(x: u64) -> u64  ==>  (i64) -> i64
;; Nothing goes through memory, so the module needs no cabi_realloc; it
;; exports a one-page memory only so that tools expecting one find it.
(module
  (memory (export "memory") 1)

  ;; echo(x) = x + 1. Like the CPython guest, whose 2^64 does not fit a u64
  ;; result, it traps for x = 2^64 - 1 instead of wrapping around.
  (func (export "bench:act/trivial@1.0.0#echo") (param $x i64) (result i64)
    (if (i64.eq (local.get $x) (i64.const -1)) (then unreachable))
    (i64.add (local.get $x) (i64.const 1)))
)
