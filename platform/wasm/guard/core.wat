;; The core module of Dolmen's guard component: host-side limits on what an
;; activity waits for (see platform/wasm/guard.py for why it exists).
;;
;; Canonical ABI, legacy names of wit-component (no interpreter, no libc):
;;   poll-for(in: list<borrow<pollable>>, timeout: u64) -> list<u32>
;;       (i32 ptr, i32 len, i64 timeout) -> i32 (ptr to (ptr, len))
;;   destination(request: borrow<outgoing-request>) -> tuple<option<scheme>, option<string>>
;;       (i32) -> i32 (ptr to a 28-byte tuple)
;;   handle(request, option<request-options>, timeout: u64) -> result<future-incoming-response, error-code>
;;       (i32, i32 is-some, i32, i64) -> i32 (ptr to the result written by wasi:http's handle)
;; Memory comes from a bump allocator that every post-return resets: nothing
;; outlives a call.
(module
  (import "wasi:io/poll@0.2.0" "poll" (func $poll (param i32 i32 i32)))
  (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop-pollable (param i32)))
  (import "wasi:clocks/monotonic-clock@0.2.0" "subscribe-duration" (func $timer (param i64) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-request.scheme" (func $scheme (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]outgoing-request.authority" (func $authority (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[resource-drop]outgoing-request" (func $drop-request (param i32)))
  (import "wasi:http/types@0.2.0" "[constructor]request-options" (func $new-options (result i32)))
  (import "wasi:http/types@0.2.0" "[method]request-options.connect-timeout" (func $get-connect (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]request-options.set-connect-timeout" (func $set-connect (param i32 i32 i64) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]request-options.first-byte-timeout" (func $get-first-byte (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]request-options.set-first-byte-timeout" (func $set-first-byte (param i32 i32 i64) (result i32)))
  (import "wasi:http/types@0.2.0" "[method]request-options.between-bytes-timeout" (func $get-between-bytes (param i32 i32)))
  (import "wasi:http/types@0.2.0" "[method]request-options.set-between-bytes-timeout" (func $set-between-bytes (param i32 i32 i64) (result i32)))
  (import "wasi:http/outgoing-handler@0.2.0" "handle" (func $handle (param i32 i32 i32 i32)))

  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 64))

  (func $realloc (export "cabi_realloc") (param $old i32) (param $old-size i32) (param $align i32) (param $size i32) (result i32)
    (local $at i32) (local $need i32)
    (local.set $at (i32.and (i32.add (global.get $top) (i32.sub (local.get $align) (i32.const 1)))
                            (i32.sub (i32.const 0) (local.get $align))))
    (global.set $top (i32.add (local.get $at) (local.get $size)))
    (local.set $need (i32.sub (global.get $top) (i32.shl (memory.size) (i32.const 16))))
    (if (i32.gt_s (local.get $need) (i32.const 0))
      (then (if (i32.eq (memory.grow (i32.add (i32.shr_u (local.get $need) (i32.const 16)) (i32.const 1))) (i32.const -1))
              (then unreachable))))
    (if (local.get $old-size)
      (then (memory.copy (local.get $at) (local.get $old) (local.get $old-size))))
    (local.get $at))

  (func $reset (param i32) (global.set $top (i32.const 64)))
  (export "cabi_post_dolmen:guard/limits@0.1.0#poll-for" (func $reset))
  (export "cabi_post_dolmen:guard/limits@0.1.0#destination" (func $reset))
  (export "cabi_post_dolmen:guard/limits@0.1.0#handle" (func $reset))

  (func (export "dolmen:guard/limits@0.1.0#poll-for") (param $in i32) (param $len i32) (param $timeout i64) (result i32)
    (local $timer i32) (local $list i32) (local $ret i32) (local $i i32)
    (local.set $timer (call $timer (local.get $timeout)))
    (local.set $list (call $realloc (i32.const 0) (i32.const 0) (i32.const 4)
                                    (i32.shl (i32.add (local.get $len) (i32.const 1)) (i32.const 2))))
    (memory.copy (local.get $list) (local.get $in) (i32.shl (local.get $len) (i32.const 2)))
    (i32.store (i32.add (local.get $list) (i32.shl (local.get $len) (i32.const 2))) (local.get $timer))
    (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 8)))
    (call $poll (local.get $list) (i32.add (local.get $len) (i32.const 1)) (local.get $ret))
    (call $drop-pollable (local.get $timer))
    ;; A callee must end the borrows it was lent before it returns.
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $drop-pollable (i32.load (i32.add (local.get $in) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (local.get $ret))

  (func (export "dolmen:guard/limits@0.1.0#destination") (param $request i32) (result i32)
    (local $ret i32)
    (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 4) (i32.const 28)))
    (call $scheme (local.get $request) (local.get $ret))
    (call $authority (local.get $request) (i32.add (local.get $ret) (i32.const 16)))
    (call $drop-request (local.get $request))
    (local.get $ret))

  ;; Keep a timeout the guest set if it is shorter than `limit`, else set `limit`.
  (func $bounded (param $current i32) (param $limit i64) (result i64)
    (if (result i64) (i32.and (i32.load8_u (local.get $current))
                              (i64.lt_u (i64.load offset=8 (local.get $current)) (local.get $limit)))
      (then (i64.load offset=8 (local.get $current)))
      (else (local.get $limit))))

  (func (export "dolmen:guard/limits@0.1.0#handle") (param $request i32) (param $has-options i32) (param $options i32) (param $timeout i64) (result i32)
    (local $scratch i32) (local $ret i32)
    (if (i64.ne (local.get $timeout) (i64.const -1))
      (then
        (if (i32.eqz (local.get $has-options))
          (then (local.set $options (call $new-options))))
        (local.set $has-options (i32.const 1))
        (local.set $scratch (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 16)))
        (call $get-connect (local.get $options) (local.get $scratch))
        (drop (call $set-connect (local.get $options) (i32.const 1) (call $bounded (local.get $scratch) (local.get $timeout))))
        (call $get-first-byte (local.get $options) (local.get $scratch))
        (drop (call $set-first-byte (local.get $options) (i32.const 1) (call $bounded (local.get $scratch) (local.get $timeout))))
        (call $get-between-bytes (local.get $options) (local.get $scratch))
        (drop (call $set-between-bytes (local.get $options) (i32.const 1) (call $bounded (local.get $scratch) (local.get $timeout))))))
    (local.set $ret (call $realloc (i32.const 0) (i32.const 0) (i32.const 8) (i32.const 64)))
    (call $handle (local.get $request) (local.get $has-options) (local.get $options) (local.get $ret))
    (local.get $ret))
)
