;; The benchmarks' workflows without an interpreter: the same world
;; (`bench:wf/bench-workflows@1.0.0`) and the same calls, in the same order,
;; as ../bench-wf/app.py, so both guests write identical event logs.
;;
;; Canonical ABI, core names of wit-component's legacy mangling (print them
;; with `wasm-tools component embed --dummy-names legacy WIT -w bench-workflows -t`):
;;
;;   imports
;;   bench:act/trivial@1.0.0 echo           echo: func(x: u64) -> u64            (i64) -> i64
;;   dolmen:workflow/host@1.0.0 new-join-set new-join-set: func(closing-strategy) -> join-set
;;                                                                                (i32) -> i32 (own handle)
;;   dolmen:workflow/host@1.0.0 sleep        sleep: func(duration-ms: u64)        (i64) -> ()
;;   dolmen:workflow/types@1.0.0 [resource-drop]join-set                         (i32) -> ()
;;   bench:act-dolmen-ext/trivial@1.0.0 echo-submit
;;       func(join-set: borrow<join-set>, x: u64) -> execution-id                (i32 i64 i32) -> ()
;;       the last parameter points to a return area of 8 bytes: the string's (ptr, len)
;;   bench:act-dolmen-ext/trivial@1.0.0 echo-await-next
;;       func(join-set: borrow<join-set>) -> result<tuple<execution-id, u64>, await-next-error>
;;                                                                                (i32 i32) -> ()
;;       return area of 40 bytes, 8-aligned: the result's case (u8) at +0 (0 ok, 1 err) and its
;;       payload at +8; for ok the tuple's execution-id (ptr, len) at +8 and its u64 at +16.
;;
;;   exports (bench:wf/flows@1.0.0#NAME)
;;   serial: func(n: u32) -> u64       (i32) -> i64
;;   fan-out: func(n: u32) -> u64      (i32) -> i64
;;   one-step: func(x: u64) -> u64     (i64) -> i64
;;   hold: func(ms: u64) -> u64        (i64) -> i64
;;   memory, and cabi_realloc, with which the host allocates the strings it returns.
;;
;; Memory: [16, 64) a version marker, [64, 104) the return area, the heap from
;; 1024 up. The allocator only bumps; as no string the host returns is kept,
;; the heap is emptied after each call that returns one, so a run of any length
;; stays in its first page.
(module
  (import "bench:act/trivial@1.0.0" "echo" (func $echo (param i64) (result i64)))
  (import "bench:act-dolmen-ext/trivial@1.0.0" "echo-submit" (func $echo_submit (param i32 i64 i32)))
  (import "bench:act-dolmen-ext/trivial@1.0.0" "echo-await-next" (func $echo_await_next (param i32 i32)))
  (import "dolmen:workflow/host@1.0.0" "new-join-set" (func $new_join_set (param i32) (result i32)))
  (import "dolmen:workflow/host@1.0.0" "sleep" (func $sleep (param i64)))
  (import "dolmen:workflow/types@1.0.0" "[resource-drop]join-set" (func $drop_join_set (param i32)))

  (memory (export "memory") 1)

  ;; The version marker: a second build with another version (benchmarks/light.py
  ;; makes "version 2" for the upgrade scenario) has another digest and replays
  ;; the same logs. Keep this text as it is: the build looks for it.
  (data (i32.const 16) "dolmen light-wf version 1")

  (global $ret i32 (i32.const 64))
  (global $heap_base i32 (i32.const 1024))
  (global $heap (mut i32) (i32.const 1024))

  ;; cabi_realloc(old-ptr, old-size, align, new-size) -> ptr: a bump allocator.
  (func $cabi_realloc (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32) (local $end i32) (local $pages i32)
    ;; ptr = align_up(heap, align)
    (local.set $ptr
      (i32.and
        (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
        (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.lt_u (local.get $end) (local.get $ptr)) (then unreachable))
    (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
      (then
        (local.set $pages
          (i32.sub
            (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
            (memory.size)))
        (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1)) (then unreachable))))
    (global.set $heap (local.get $end))
    (if (local.get $old)
      (then
        (memory.copy
          (local.get $ptr)
          (local.get $old)
          (select (local.get $old_size) (local.get $size)
            (i32.lt_u (local.get $old_size) (local.get $size))))))
    (local.get $ptr))

  ;; serial(n): calls echo(i) for i in 0..n, one after another; returns the sum.
  (func (export "bench:wf/flows@1.0.0#serial") (param $n i32) (result i64)
    (local $i i32) (local $total i64)
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $total
          (i64.add (local.get $total) (call $echo (i64.extend_i32_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $total))

  ;; fan-out(n): submits echo(i) for i in 0..n into one join set (closing
  ;; strategy `complete`), then awaits n responses; returns the sum.
  (func (export "bench:wf/flows@1.0.0#fan-out") (param $n i32) (result i64)
    (local $js i32) (local $i i32) (local $total i64)
    (local.set $js (call $new_join_set (i32.const 0)))  ;; closing-strategy.complete
    (block $submitted
      (loop $submit
        (br_if $submitted (i32.ge_u (local.get $i) (local.get $n)))
        (call $echo_submit (local.get $js) (i64.extend_i32_u (local.get $i)) (global.get $ret))
        (global.set $heap (global.get $heap_base))  ;; the execution id is not kept
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $submit)))
    (local.set $i (i32.const 0))
    (block $awaited
      (loop $await
        (br_if $awaited (i32.ge_u (local.get $i) (local.get $n)))
        (call $echo_await_next (local.get $js) (global.get $ret))
        ;; An err (a failed child, ...) traps, as the exception does in the CPython guest.
        (if (i32.load8_u (global.get $ret)) (then unreachable))
        (local.set $total
          (i64.add (local.get $total) (i64.load offset=16 (global.get $ret))))
        (global.set $heap (global.get $heap_base))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $await)))
    (call $drop_join_set (local.get $js))
    (local.get $total))

  ;; one-step(x): one activity call.
  (func (export "bench:wf/flows@1.0.0#one-step") (param $x i64) (result i64)
    (call $echo (local.get $x)))

  ;; hold(ms): calls echo(ms) once, then sleeps durably for ms.
  (func (export "bench:wf/flows@1.0.0#hold") (param $ms i64) (result i64)
    (local $value i64)
    (local.set $value (call $echo (local.get $ms)))
    (call $sleep (local.get $ms))
    (local.get $value))
)
