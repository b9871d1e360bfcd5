(component
  (type $ty-wasi:io/poll@0.2.0 (;0;)
    (instance
      (export (;0;) "pollable" (type (sub resource)))
      (type (;1;) (borrow 0))
      (type (;2;) (list 1))
      (type (;3;) (list u32))
      (type (;4;) (func (param "in" 2) (result 3)))
      (export (;0;) "poll" (func (type 4)))
    )
  )
  (import "wasi:io/poll@0.2.0" (instance $wasi:io/poll@0.2.0 (;0;) (type $ty-wasi:io/poll@0.2.0)))
  (alias export $wasi:io/poll@0.2.0 "pollable" (type $pollable (;1;)))
  (type $ty-wasi:clocks/monotonic-clock@0.2.0 (;2;)
    (instance
      (type (;0;) u64)
      (export (;1;) "duration" (type (eq 0)))
      (alias outer 1 $pollable (type (;2;)))
      (export (;3;) "pollable" (type (eq 2)))
      (type (;4;) (own 3))
      (type (;5;) (func (param "when" 1) (result 4)))
      (export (;0;) "subscribe-duration" (func (type 5)))
    )
  )
  (import "wasi:clocks/monotonic-clock@0.2.0" (instance $wasi:clocks/monotonic-clock@0.2.0 (;1;) (type $ty-wasi:clocks/monotonic-clock@0.2.0)))
  (alias export $wasi:clocks/monotonic-clock@0.2.0 "duration" (type $duration (;3;)))
  (type $ty-wasi:http/types@0.2.0 (;4;)
    (instance
      (export (;0;) "outgoing-request" (type (sub resource)))
      (type (;1;) (variant (case "HTTP") (case "HTTPS") (case "other" string)))
      (export (;2;) "scheme" (type (eq 1)))
      (export (;3;) "request-options" (type (sub resource)))
      (alias outer 1 $duration (type (;4;)))
      (export (;5;) "duration" (type (eq 4)))
      (export (;6;) "future-incoming-response" (type (sub resource)))
      (type (;7;) (option string))
      (type (;8;) (option u16))
      (type (;9;) (record (field "rcode" 7) (field "info-code" 8)))
      (export (;10;) "DNS-error-payload" (type (eq 9)))
      (type (;11;) (option u8))
      (type (;12;) (record (field "alert-id" 11) (field "alert-message" 7)))
      (export (;13;) "TLS-alert-received-payload" (type (eq 12)))
      (type (;14;) (option u32))
      (type (;15;) (record (field "field-name" 7) (field "field-size" 14)))
      (export (;16;) "field-size-payload" (type (eq 15)))
      (type (;17;) (option u64))
      (type (;18;) (option 16))
      (type (;19;) (variant (case "DNS-timeout") (case "DNS-error" 10) (case "destination-not-found") (case "destination-unavailable") (case "destination-IP-prohibited") (case "destination-IP-unroutable") (case "connection-refused") (case "connection-terminated") (case "connection-timeout") (case "connection-read-timeout") (case "connection-write-timeout") (case "connection-limit-reached") (case "TLS-protocol-error") (case "TLS-certificate-error") (case "TLS-alert-received" 13) (case "HTTP-request-denied") (case "HTTP-request-length-required") (case "HTTP-request-body-size" 17) (case "HTTP-request-method-invalid") (case "HTTP-request-URI-invalid") (case "HTTP-request-URI-too-long") (case "HTTP-request-header-section-size" 14) (case "HTTP-request-header-size" 18) (case "HTTP-request-trailer-section-size" 14) (case "HTTP-request-trailer-size" 16) (case "HTTP-response-incomplete") (case "HTTP-response-header-section-size" 14) (case "HTTP-response-header-size" 16) (case "HTTP-response-body-size" 17) (case "HTTP-response-trailer-section-size" 14) (case "HTTP-response-trailer-size" 16) (case "HTTP-response-transfer-coding" 7) (case "HTTP-response-content-coding" 7) (case "HTTP-response-timeout") (case "HTTP-upgrade-failed") (case "HTTP-protocol-error") (case "loop-detected") (case "configuration-error") (case "internal-error" 7)))
      (export (;20;) "error-code" (type (eq 19)))
      (type (;21;) (borrow 0))
      (type (;22;) (option 2))
      (type (;23;) (func (param "self" 21) (result 22)))
      (export (;0;) "[method]outgoing-request.scheme" (func (type 23)))
      (type (;24;) (func (param "self" 21) (result 7)))
      (export (;1;) "[method]outgoing-request.authority" (func (type 24)))
      (type (;25;) (own 3))
      (type (;26;) (func (result 25)))
      (export (;2;) "[constructor]request-options" (func (type 26)))
      (type (;27;) (borrow 3))
      (type (;28;) (option 5))
      (type (;29;) (func (param "self" 27) (result 28)))
      (export (;3;) "[method]request-options.connect-timeout" (func (type 29)))
      (type (;30;) (result))
      (type (;31;) (func (param "self" 27) (param "duration" 28) (result 30)))
      (export (;4;) "[method]request-options.set-connect-timeout" (func (type 31)))
      (export (;5;) "[method]request-options.first-byte-timeout" (func (type 29)))
      (export (;6;) "[method]request-options.set-first-byte-timeout" (func (type 31)))
      (export (;7;) "[method]request-options.between-bytes-timeout" (func (type 29)))
      (export (;8;) "[method]request-options.set-between-bytes-timeout" (func (type 31)))
    )
  )
  (import "wasi:http/types@0.2.0" (instance $wasi:http/types@0.2.0 (;2;) (type $ty-wasi:http/types@0.2.0)))
  (alias export $wasi:http/types@0.2.0 "outgoing-request" (type $outgoing-request (;5;)))
  (alias export $wasi:http/types@0.2.0 "request-options" (type $request-options (;6;)))
  (alias export $wasi:http/types@0.2.0 "future-incoming-response" (type $future-incoming-response (;7;)))
  (alias export $wasi:http/types@0.2.0 "error-code" (type $error-code (;8;)))
  (type $ty-wasi:http/outgoing-handler@0.2.0 (;9;)
    (instance
      (alias outer 1 $outgoing-request (type (;0;)))
      (export (;1;) "outgoing-request" (type (eq 0)))
      (alias outer 1 $request-options (type (;2;)))
      (export (;3;) "request-options" (type (eq 2)))
      (alias outer 1 $future-incoming-response (type (;4;)))
      (export (;5;) "future-incoming-response" (type (eq 4)))
      (alias outer 1 $error-code (type (;6;)))
      (export (;7;) "error-code" (type (eq 6)))
      (type (;8;) (own 1))
      (type (;9;) (own 3))
      (type (;10;) (option 9))
      (type (;11;) (own 5))
      (type (;12;) (result 11 (error 7)))
      (type (;13;) (func (param "request" 8) (param "options" 10) (result 12)))
      (export (;0;) "handle" (func (type 13)))
    )
  )
  (import "wasi:http/outgoing-handler@0.2.0" (instance $wasi:http/outgoing-handler@0.2.0 (;3;) (type $ty-wasi:http/outgoing-handler@0.2.0)))
  (core module $main (;0;)
    (type (;0;) (func (param i32 i32 i32)))
    (type (;1;) (func (param i32)))
    (type (;2;) (func (param i64) (result i32)))
    (type (;3;) (func (param i32 i32)))
    (type (;4;) (func (result i32)))
    (type (;5;) (func (param i32 i32 i64) (result i32)))
    (type (;6;) (func (param i32 i32 i32 i32)))
    (type (;7;) (func (param i32 i32 i32 i32) (result i32)))
    (type (;8;) (func (param i32) (result i32)))
    (type (;9;) (func (param i32 i64) (result i64)))
    (type (;10;) (func (param i32 i32 i32 i64) (result i32)))
    (import "wasi:io/poll@0.2.0" "poll" (func $poll (;0;) (type 0) (param i32 i32 i32)))
    (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop-pollable (;1;) (type 1) (param i32)))
    (import "wasi:clocks/monotonic-clock@0.2.0" "subscribe-duration" (func $timer (;2;) (type 2) (param i64) (result i32)))
    (import "wasi:http/types@0.2.0" "[method]outgoing-request.scheme" (func $scheme (;3;) (type 3) (param i32 i32)))
    (import "wasi:http/types@0.2.0" "[method]outgoing-request.authority" (func $authority (;4;) (type 3) (param i32 i32)))
    (import "wasi:http/types@0.2.0" "[resource-drop]outgoing-request" (func $drop-request (;5;) (type 1) (param i32)))
    (import "wasi:http/types@0.2.0" "[constructor]request-options" (func $new-options (;6;) (type 4) (result i32)))
    (import "wasi:http/types@0.2.0" "[method]request-options.connect-timeout" (func $get-connect (;7;) (type 3) (param i32 i32)))
    (import "wasi:http/types@0.2.0" "[method]request-options.set-connect-timeout" (func $set-connect (;8;) (type 5) (param i32 i32 i64) (result i32)))
    (import "wasi:http/types@0.2.0" "[method]request-options.first-byte-timeout" (func $get-first-byte (;9;) (type 3) (param i32 i32)))
    (import "wasi:http/types@0.2.0" "[method]request-options.set-first-byte-timeout" (func $set-first-byte (;10;) (type 5) (param i32 i32 i64) (result i32)))
    (import "wasi:http/types@0.2.0" "[method]request-options.between-bytes-timeout" (func $get-between-bytes (;11;) (type 3) (param i32 i32)))
    (import "wasi:http/types@0.2.0" "[method]request-options.set-between-bytes-timeout" (func $set-between-bytes (;12;) (type 5) (param i32 i32 i64) (result i32)))
    (import "wasi:http/outgoing-handler@0.2.0" "handle" (func $handle (;13;) (type 6) (param i32 i32 i32 i32)))
    (memory (;0;) 1)
    (global $top (;0;) (mut i32) i32.const 64)
    (export "memory" (memory 0))
    (export "cabi_realloc" (func $realloc))
    (export "cabi_post_dolmen:guard/limits@0.1.0#poll-for" (func $reset))
    (export "cabi_post_dolmen:guard/limits@0.1.0#destination" (func $reset))
    (export "cabi_post_dolmen:guard/limits@0.1.0#handle" (func $reset))
    (export "dolmen:guard/limits@0.1.0#poll-for" (func 16))
    (export "dolmen:guard/limits@0.1.0#destination" (func 17))
    (export "dolmen:guard/limits@0.1.0#handle" (func 19))
    (func $realloc (;14;) (type 7) (param $old i32) (param $old-size i32) (param $align i32) (param $size i32) (result i32)
      (local $at i32) (local $need i32)
      global.get $top
      local.get $align
      i32.const 1
      i32.sub
      i32.add
      i32.const 0
      local.get $align
      i32.sub
      i32.and
      local.set $at
      local.get $at
      local.get $size
      i32.add
      global.set $top
      global.get $top
      memory.size
      i32.const 16
      i32.shl
      i32.sub
      local.set $need
      local.get $need
      i32.const 0
      i32.gt_s
      if ;; label = @1
        local.get $need
        i32.const 16
        i32.shr_u
        i32.const 1
        i32.add
        memory.grow
        i32.const -1
        i32.eq
        if ;; label = @2
          unreachable
        end
      end
      local.get $old-size
      if ;; label = @1
        local.get $at
        local.get $old
        local.get $old-size
        memory.copy
      end
      local.get $at
    )
    (func $reset (;15;) (type 1) (param i32)
      i32.const 64
      global.set $top
    )
    (func (;16;) (type 5) (param $in i32) (param $len i32) (param $timeout i64) (result i32)
      (local $timer i32) (local $list i32) (local $ret i32) (local $i i32)
      local.get $timeout
      call $timer
      local.set $timer
      i32.const 0
      i32.const 0
      i32.const 4
      local.get $len
      i32.const 1
      i32.add
      i32.const 2
      i32.shl
      call $realloc
      local.set $list
      local.get $list
      local.get $in
      local.get $len
      i32.const 2
      i32.shl
      memory.copy
      local.get $list
      local.get $len
      i32.const 2
      i32.shl
      i32.add
      local.get $timer
      i32.store
      i32.const 0
      i32.const 0
      i32.const 4
      i32.const 8
      call $realloc
      local.set $ret
      local.get $list
      local.get $len
      i32.const 1
      i32.add
      local.get $ret
      call $poll
      local.get $timer
      call $drop-pollable
      block $done
        loop $each
          local.get $i
          local.get $len
          i32.ge_u
          br_if $done
          local.get $in
          local.get $i
          i32.const 2
          i32.shl
          i32.add
          i32.load
          call $drop-pollable
          local.get $i
          i32.const 1
          i32.add
          local.set $i
          br $each
        end
      end
      local.get $ret
    )
    (func (;17;) (type 8) (param $request i32) (result i32)
      (local $ret i32)
      i32.const 0
      i32.const 0
      i32.const 4
      i32.const 28
      call $realloc
      local.set $ret
      local.get $request
      local.get $ret
      call $scheme
      local.get $request
      local.get $ret
      i32.const 16
      i32.add
      call $authority
      local.get $request
      call $drop-request
      local.get $ret
    )
    (func $bounded (;18;) (type 9) (param $current i32) (param $limit i64) (result i64)
      local.get $current
      i32.load8_u
      local.get $current
      i64.load offset=8
      local.get $limit
      i64.lt_u
      i32.and
      if (result i64) ;; label = @1
        local.get $current
        i64.load offset=8
      else
        local.get $limit
      end
    )
    (func (;19;) (type 10) (param $request i32) (param $has-options i32) (param $options i32) (param $timeout i64) (result i32)
      (local $scratch i32) (local $ret i32)
      local.get $timeout
      i64.const -1
      i64.ne
      if ;; label = @1
        local.get $has-options
        i32.eqz
        if ;; label = @2
          call $new-options
          local.set $options
        end
        i32.const 1
        local.set $has-options
        i32.const 0
        i32.const 0
        i32.const 8
        i32.const 16
        call $realloc
        local.set $scratch
        local.get $options
        local.get $scratch
        call $get-connect
        local.get $options
        i32.const 1
        local.get $scratch
        local.get $timeout
        call $bounded
        call $set-connect
        drop
        local.get $options
        local.get $scratch
        call $get-first-byte
        local.get $options
        i32.const 1
        local.get $scratch
        local.get $timeout
        call $bounded
        call $set-first-byte
        drop
        local.get $options
        local.get $scratch
        call $get-between-bytes
        local.get $options
        i32.const 1
        local.get $scratch
        local.get $timeout
        call $bounded
        call $set-between-bytes
        drop
      end
      i32.const 0
      i32.const 0
      i32.const 8
      i32.const 64
      call $realloc
      local.set $ret
      local.get $request
      local.get $has-options
      local.get $options
      local.get $ret
      call $handle
      local.get $ret
    )
    (@producers
      (processed-by "wit-component" "0.262.0")
    )
  )
  (core module $wit-component-shim-module (;1;)
    (type (;0;) (func (param i32 i32 i32)))
    (type (;1;) (func (param i32 i32)))
    (type (;2;) (func (param i32 i32 i32 i32)))
    (table (;0;) 7 7 funcref)
    (export "0" (func $indirect-wasi:io/poll@0.2.0-poll))
    (export "1" (func $"indirect-wasi:http/types@0.2.0-[method]outgoing-request.scheme"))
    (export "2" (func $"indirect-wasi:http/types@0.2.0-[method]outgoing-request.authority"))
    (export "3" (func $"indirect-wasi:http/types@0.2.0-[method]request-options.connect-timeout"))
    (export "4" (func $"indirect-wasi:http/types@0.2.0-[method]request-options.first-byte-timeout"))
    (export "5" (func $"indirect-wasi:http/types@0.2.0-[method]request-options.between-bytes-timeout"))
    (export "6" (func $indirect-wasi:http/outgoing-handler@0.2.0-handle))
    (export "$imports" (table 0))
    (func $indirect-wasi:io/poll@0.2.0-poll (;0;) (type 0) (param i32 i32 i32)
      local.get 0
      local.get 1
      local.get 2
      i32.const 0
      call_indirect (type 0)
    )
    (func $"indirect-wasi:http/types@0.2.0-[method]outgoing-request.scheme" (;1;) (type 1) (param i32 i32)
      local.get 0
      local.get 1
      i32.const 1
      call_indirect (type 1)
    )
    (func $"indirect-wasi:http/types@0.2.0-[method]outgoing-request.authority" (;2;) (type 1) (param i32 i32)
      local.get 0
      local.get 1
      i32.const 2
      call_indirect (type 1)
    )
    (func $"indirect-wasi:http/types@0.2.0-[method]request-options.connect-timeout" (;3;) (type 1) (param i32 i32)
      local.get 0
      local.get 1
      i32.const 3
      call_indirect (type 1)
    )
    (func $"indirect-wasi:http/types@0.2.0-[method]request-options.first-byte-timeout" (;4;) (type 1) (param i32 i32)
      local.get 0
      local.get 1
      i32.const 4
      call_indirect (type 1)
    )
    (func $"indirect-wasi:http/types@0.2.0-[method]request-options.between-bytes-timeout" (;5;) (type 1) (param i32 i32)
      local.get 0
      local.get 1
      i32.const 5
      call_indirect (type 1)
    )
    (func $indirect-wasi:http/outgoing-handler@0.2.0-handle (;6;) (type 2) (param i32 i32 i32 i32)
      local.get 0
      local.get 1
      local.get 2
      local.get 3
      i32.const 6
      call_indirect (type 2)
    )
    (@producers
      (processed-by "wit-component" "0.262.0")
    )
  )
  (core instance $wit-component-shim-instance (;0;) (instantiate $wit-component-shim-module))
  (alias export $wasi:io/poll@0.2.0 "pollable" (type $"#type10 pollable" (@name "pollable") (;10;)))
  (alias export $wasi:http/types@0.2.0 "outgoing-request" (type $"#type11 outgoing-request" (@name "outgoing-request") (;11;)))
  (alias export $wasi:http/types@0.2.0 "request-options" (type $"#type12 request-options" (@name "request-options") (;12;)))
  (alias export $wasi:http/types@0.2.0 "future-incoming-response" (type $"#type13 future-incoming-response" (@name "future-incoming-response") (;13;)))
  (alias export $wasi:http/types@0.2.0 "error-code" (type $"#type14 error-code" (@name "error-code") (;14;)))
  (alias export $wasi:http/types@0.2.0 "scheme" (type $scheme (;15;)))
  (alias core export $wit-component-shim-instance "0" (core func $indirect-wasi:io/poll@0.2.0-poll (;0;)))
  (alias export $wasi:io/poll@0.2.0 "pollable" (type $"#type16 pollable" (@name "pollable") (;16;)))
  (core func $resource.drop (;1;) (canon resource.drop $"#type16 pollable"))
  (core instance $wasi:io/poll@0.2.0 (;1;)
    (export "poll" (func $indirect-wasi:io/poll@0.2.0-poll))
    (export "[resource-drop]pollable" (func $resource.drop))
  )
  (alias export $wasi:clocks/monotonic-clock@0.2.0 "subscribe-duration" (func $subscribe-duration (;0;)))
  (core func $subscribe-duration (;2;) (canon lower (func $subscribe-duration)))
  (core instance $wasi:clocks/monotonic-clock@0.2.0 (;2;)
    (export "subscribe-duration" (func $subscribe-duration))
  )
  (alias core export $wit-component-shim-instance "1" (core func $"indirect-wasi:http/types@0.2.0-[method]outgoing-request.scheme" (;3;)))
  (alias core export $wit-component-shim-instance "2" (core func $"indirect-wasi:http/types@0.2.0-[method]outgoing-request.authority" (;4;)))
  (alias export $wasi:http/types@0.2.0 "outgoing-request" (type $"#type17 outgoing-request" (@name "outgoing-request") (;17;)))
  (core func $"#core-func5 resource.drop" (@name "resource.drop") (;5;) (canon resource.drop $"#type17 outgoing-request"))
  (alias export $wasi:http/types@0.2.0 "[constructor]request-options" (func $"[constructor]request-options" (;1;)))
  (core func $"[constructor]request-options" (;6;) (canon lower (func $"[constructor]request-options")))
  (alias core export $wit-component-shim-instance "3" (core func $"indirect-wasi:http/types@0.2.0-[method]request-options.connect-timeout" (;7;)))
  (alias export $wasi:http/types@0.2.0 "[method]request-options.set-connect-timeout" (func $"[method]request-options.set-connect-timeout" (;2;)))
  (core func $"[method]request-options.set-connect-timeout" (;8;) (canon lower (func $"[method]request-options.set-connect-timeout")))
  (alias core export $wit-component-shim-instance "4" (core func $"indirect-wasi:http/types@0.2.0-[method]request-options.first-byte-timeout" (;9;)))
  (alias export $wasi:http/types@0.2.0 "[method]request-options.set-first-byte-timeout" (func $"[method]request-options.set-first-byte-timeout" (;3;)))
  (core func $"[method]request-options.set-first-byte-timeout" (;10;) (canon lower (func $"[method]request-options.set-first-byte-timeout")))
  (alias core export $wit-component-shim-instance "5" (core func $"indirect-wasi:http/types@0.2.0-[method]request-options.between-bytes-timeout" (;11;)))
  (alias export $wasi:http/types@0.2.0 "[method]request-options.set-between-bytes-timeout" (func $"[method]request-options.set-between-bytes-timeout" (;4;)))
  (core func $"[method]request-options.set-between-bytes-timeout" (;12;) (canon lower (func $"[method]request-options.set-between-bytes-timeout")))
  (core instance $wasi:http/types@0.2.0 (;3;)
    (export "[method]outgoing-request.scheme" (func $"indirect-wasi:http/types@0.2.0-[method]outgoing-request.scheme"))
    (export "[method]outgoing-request.authority" (func $"indirect-wasi:http/types@0.2.0-[method]outgoing-request.authority"))
    (export "[resource-drop]outgoing-request" (func $"#core-func5 resource.drop"))
    (export "[constructor]request-options" (func $"[constructor]request-options"))
    (export "[method]request-options.connect-timeout" (func $"indirect-wasi:http/types@0.2.0-[method]request-options.connect-timeout"))
    (export "[method]request-options.set-connect-timeout" (func $"[method]request-options.set-connect-timeout"))
    (export "[method]request-options.first-byte-timeout" (func $"indirect-wasi:http/types@0.2.0-[method]request-options.first-byte-timeout"))
    (export "[method]request-options.set-first-byte-timeout" (func $"[method]request-options.set-first-byte-timeout"))
    (export "[method]request-options.between-bytes-timeout" (func $"indirect-wasi:http/types@0.2.0-[method]request-options.between-bytes-timeout"))
    (export "[method]request-options.set-between-bytes-timeout" (func $"[method]request-options.set-between-bytes-timeout"))
  )
  (alias core export $wit-component-shim-instance "6" (core func $indirect-wasi:http/outgoing-handler@0.2.0-handle (;13;)))
  (core instance $wasi:http/outgoing-handler@0.2.0 (;4;)
    (export "handle" (func $indirect-wasi:http/outgoing-handler@0.2.0-handle))
  )
  (core instance $main (;5;) (instantiate $main
      (with "wasi:io/poll@0.2.0" (instance $wasi:io/poll@0.2.0))
      (with "wasi:clocks/monotonic-clock@0.2.0" (instance $wasi:clocks/monotonic-clock@0.2.0))
      (with "wasi:http/types@0.2.0" (instance $wasi:http/types@0.2.0))
      (with "wasi:http/outgoing-handler@0.2.0" (instance $wasi:http/outgoing-handler@0.2.0))
    )
  )
  (alias core export $main "memory" (core memory $memory (;0;)))
  (core module $wit-component-fixup (;2;)
    (type (;0;) (func (param i32 i32 i32)))
    (type (;1;) (func (param i32 i32)))
    (type (;2;) (func (param i32 i32 i32 i32)))
    (import "actual" "0" (func $0 (;0;) (type 0) (param i32 i32 i32)))
    (import "actual" "1" (func $1 (;1;) (type 1) (param i32 i32)))
    (import "actual" "2" (func $2 (;2;) (type 1) (param i32 i32)))
    (import "actual" "3" (func $3 (;3;) (type 1) (param i32 i32)))
    (import "actual" "4" (func $4 (;4;) (type 1) (param i32 i32)))
    (import "actual" "5" (func $5 (;5;) (type 1) (param i32 i32)))
    (import "actual" "6" (func $6 (;6;) (type 2) (param i32 i32 i32 i32)))
    (import "shim" "$imports" (table (;0;) 7 7 funcref))
    (elem (;0;) (i32.const 0) func $0 $1 $2 $3 $4 $5 $6)
    (@producers
      (processed-by "wit-component" "0.262.0")
    )
  )
  (alias export $wasi:io/poll@0.2.0 "poll" (func $poll (;5;)))
  (alias core export $main "cabi_realloc" (core func $cabi_realloc (;14;)))
  (core func $"#core-func15 indirect-wasi:io/poll@0.2.0-poll" (@name "indirect-wasi:io/poll@0.2.0-poll") (;15;) (canon lower (func $poll) (memory $memory) (realloc $cabi_realloc)))
  (alias export $wasi:http/types@0.2.0 "[method]outgoing-request.scheme" (func $"[method]outgoing-request.scheme" (;6;)))
  (core func $"#core-func16 indirect-wasi:http/types@0.2.0-[method]outgoing-request.scheme" (@name "indirect-wasi:http/types@0.2.0-[method]outgoing-request.scheme") (;16;) (canon lower (func $"[method]outgoing-request.scheme") (memory $memory) (realloc $cabi_realloc) string-encoding=utf8))
  (alias export $wasi:http/types@0.2.0 "[method]outgoing-request.authority" (func $"[method]outgoing-request.authority" (;7;)))
  (core func $"#core-func17 indirect-wasi:http/types@0.2.0-[method]outgoing-request.authority" (@name "indirect-wasi:http/types@0.2.0-[method]outgoing-request.authority") (;17;) (canon lower (func $"[method]outgoing-request.authority") (memory $memory) (realloc $cabi_realloc) string-encoding=utf8))
  (alias export $wasi:http/types@0.2.0 "[method]request-options.connect-timeout" (func $"[method]request-options.connect-timeout" (;8;)))
  (core func $"#core-func18 indirect-wasi:http/types@0.2.0-[method]request-options.connect-timeout" (@name "indirect-wasi:http/types@0.2.0-[method]request-options.connect-timeout") (;18;) (canon lower (func $"[method]request-options.connect-timeout") (memory $memory)))
  (alias export $wasi:http/types@0.2.0 "[method]request-options.first-byte-timeout" (func $"[method]request-options.first-byte-timeout" (;9;)))
  (core func $"#core-func19 indirect-wasi:http/types@0.2.0-[method]request-options.first-byte-timeout" (@name "indirect-wasi:http/types@0.2.0-[method]request-options.first-byte-timeout") (;19;) (canon lower (func $"[method]request-options.first-byte-timeout") (memory $memory)))
  (alias export $wasi:http/types@0.2.0 "[method]request-options.between-bytes-timeout" (func $"[method]request-options.between-bytes-timeout" (;10;)))
  (core func $"#core-func20 indirect-wasi:http/types@0.2.0-[method]request-options.between-bytes-timeout" (@name "indirect-wasi:http/types@0.2.0-[method]request-options.between-bytes-timeout") (;20;) (canon lower (func $"[method]request-options.between-bytes-timeout") (memory $memory)))
  (alias export $wasi:http/outgoing-handler@0.2.0 "handle" (func $handle (;11;)))
  (core func $"#core-func21 indirect-wasi:http/outgoing-handler@0.2.0-handle" (@name "indirect-wasi:http/outgoing-handler@0.2.0-handle") (;21;) (canon lower (func $handle) (memory $memory) (realloc $cabi_realloc) string-encoding=utf8))
  (core instance $actual (;6;)
    (export "0" (func $"#core-func15 indirect-wasi:io/poll@0.2.0-poll"))
    (export "1" (func $"#core-func16 indirect-wasi:http/types@0.2.0-[method]outgoing-request.scheme"))
    (export "2" (func $"#core-func17 indirect-wasi:http/types@0.2.0-[method]outgoing-request.authority"))
    (export "3" (func $"#core-func18 indirect-wasi:http/types@0.2.0-[method]request-options.connect-timeout"))
    (export "4" (func $"#core-func19 indirect-wasi:http/types@0.2.0-[method]request-options.first-byte-timeout"))
    (export "5" (func $"#core-func20 indirect-wasi:http/types@0.2.0-[method]request-options.between-bytes-timeout"))
    (export "6" (func $"#core-func21 indirect-wasi:http/outgoing-handler@0.2.0-handle"))
  )
  (core instance $fixup (;7;) (instantiate $wit-component-fixup
      (with "actual" (instance $actual))
      (with "shim" (instance $wit-component-shim-instance))
    )
  )
  (type (;18;) (borrow $"#type10 pollable"))
  (type (;19;) (list 18))
  (type (;20;) (list u32))
  (type (;21;) (func (param "in" 19) (param "timeout" u64) (result 20)))
  (alias core export $main "dolmen:guard/limits@0.1.0#poll-for" (core func $dolmen:guard/limits@0.1.0#poll-for (;22;)))
  (alias core export $main "cabi_post_dolmen:guard/limits@0.1.0#poll-for" (core func $cabi_post_dolmen:guard/limits@0.1.0#poll-for (;23;)))
  (func $poll-for (;12;) (type 21) (canon lift (core func $dolmen:guard/limits@0.1.0#poll-for) (memory $memory) (realloc $cabi_realloc) (post-return $cabi_post_dolmen:guard/limits@0.1.0#poll-for)))
  (type (;22;) (borrow $"#type11 outgoing-request"))
  (type (;23;) (option $scheme))
  (type (;24;) (option string))
  (type (;25;) (tuple 23 24))
  (type (;26;) (func (param "request" 22) (result 25)))
  (alias core export $main "dolmen:guard/limits@0.1.0#destination" (core func $dolmen:guard/limits@0.1.0#destination (;24;)))
  (alias core export $main "cabi_post_dolmen:guard/limits@0.1.0#destination" (core func $cabi_post_dolmen:guard/limits@0.1.0#destination (;25;)))
  (func $destination (;13;) (type 26) (canon lift (core func $dolmen:guard/limits@0.1.0#destination) (memory $memory) string-encoding=utf8 (post-return $cabi_post_dolmen:guard/limits@0.1.0#destination)))
  (type (;27;) (own $"#type11 outgoing-request"))
  (type (;28;) (own $"#type12 request-options"))
  (type (;29;) (option 28))
  (type (;30;) (own $"#type13 future-incoming-response"))
  (type (;31;) (result 30 (error $"#type14 error-code")))
  (type (;32;) (func (param "request" 27) (param "options" 29) (param "timeout" u64) (result 31)))
  (alias core export $main "dolmen:guard/limits@0.1.0#handle" (core func $dolmen:guard/limits@0.1.0#handle (;26;)))
  (alias core export $main "cabi_post_dolmen:guard/limits@0.1.0#handle" (core func $cabi_post_dolmen:guard/limits@0.1.0#handle (;27;)))
  (func $"#func14 handle" (@name "handle") (;14;) (type 32) (canon lift (core func $dolmen:guard/limits@0.1.0#handle) (memory $memory) string-encoding=utf8 (post-return $cabi_post_dolmen:guard/limits@0.1.0#handle)))
  (alias export $wasi:http/types@0.2.0 "DNS-error-payload" (type $DNS-error-payload (;33;)))
  (alias export $wasi:http/types@0.2.0 "TLS-alert-received-payload" (type $TLS-alert-received-payload (;34;)))
  (alias export $wasi:http/types@0.2.0 "field-size-payload" (type $field-size-payload (;35;)))
  (component $dolmen:guard/limits@0.1.0-shim-component (;0;)
    (import "import-type-pollable" (type (;0;) (sub resource)))
    (import "import-type-outgoing-request" (type (;1;) (sub resource)))
    (import "import-type-request-options" (type (;2;) (sub resource)))
    (import "import-type-future-incoming-response" (type (;3;) (sub resource)))
    (type (;4;) (option string))
    (type (;5;) (option u16))
    (type (;6;) (record (field "rcode" 4) (field "info-code" 5)))
    (import "import-type-DNS-error-payload" (type (;7;) (eq 6)))
    (type (;8;) (option u8))
    (type (;9;) (record (field "alert-id" 8) (field "alert-message" 4)))
    (import "import-type-TLS-alert-received-payload" (type (;10;) (eq 9)))
    (type (;11;) (option u32))
    (type (;12;) (record (field "field-name" 4) (field "field-size" 11)))
    (import "import-type-field-size-payload" (type (;13;) (eq 12)))
    (type (;14;) (option u64))
    (type (;15;) (option 13))
    (type (;16;) (variant (case "DNS-timeout") (case "DNS-error" 7) (case "destination-not-found") (case "destination-unavailable") (case "destination-IP-prohibited") (case "destination-IP-unroutable") (case "connection-refused") (case "connection-terminated") (case "connection-timeout") (case "connection-read-timeout") (case "connection-write-timeout") (case "connection-limit-reached") (case "TLS-protocol-error") (case "TLS-certificate-error") (case "TLS-alert-received" 10) (case "HTTP-request-denied") (case "HTTP-request-length-required") (case "HTTP-request-body-size" 14) (case "HTTP-request-method-invalid") (case "HTTP-request-URI-invalid") (case "HTTP-request-URI-too-long") (case "HTTP-request-header-section-size" 11) (case "HTTP-request-header-size" 15) (case "HTTP-request-trailer-section-size" 11) (case "HTTP-request-trailer-size" 13) (case "HTTP-response-incomplete") (case "HTTP-response-header-section-size" 11) (case "HTTP-response-header-size" 13) (case "HTTP-response-body-size" 14) (case "HTTP-response-trailer-section-size" 11) (case "HTTP-response-trailer-size" 13) (case "HTTP-response-transfer-coding" 4) (case "HTTP-response-content-coding" 4) (case "HTTP-response-timeout") (case "HTTP-upgrade-failed") (case "HTTP-protocol-error") (case "loop-detected") (case "configuration-error") (case "internal-error" 4)))
    (import "import-type-error-code" (type (;17;) (eq 16)))
    (type (;18;) (variant (case "HTTP") (case "HTTPS") (case "other" string)))
    (import "import-type-scheme" (type (;19;) (eq 18)))
    (import "import-type-pollable0" (type (;20;) (eq 0)))
    (type (;21;) (borrow 20))
    (type (;22;) (list 21))
    (type (;23;) (list u32))
    (type (;24;) (func (param "in" 22) (param "timeout" u64) (result 23)))
    (import "import-func-poll-for" (func (;0;) (type 24)))
    (import "import-type-outgoing-request0" (type (;25;) (eq 1)))
    (type (;26;) (borrow 25))
    (import "import-type-scheme0" (type (;27;) (eq 19)))
    (type (;28;) (option 27))
    (type (;29;) (tuple 28 4))
    (type (;30;) (func (param "request" 26) (result 29)))
    (import "import-func-destination" (func (;1;) (type 30)))
    (type (;31;) (own 25))
    (import "import-type-request-options0" (type (;32;) (eq 2)))
    (type (;33;) (own 32))
    (type (;34;) (option 33))
    (import "import-type-future-incoming-response0" (type (;35;) (eq 3)))
    (type (;36;) (own 35))
    (import "import-type-error-code0" (type (;37;) (eq 17)))
    (type (;38;) (result 36 (error 37)))
    (type (;39;) (func (param "request" 31) (param "options" 34) (param "timeout" u64) (result 38)))
    (import "import-func-handle" (func (;2;) (type 39)))
    (export (;40;) "pollable" (type 0))
    (export (;41;) "outgoing-request" (type 1))
    (export (;42;) "request-options" (type 2))
    (export (;43;) "future-incoming-response" (type 3))
    (export (;44;) "error-code" (type 17))
    (export (;45;) "scheme" (type 19))
    (type (;46;) (borrow 40))
    (type (;47;) (list 46))
    (type (;48;) (list u32))
    (type (;49;) (func (param "in" 47) (param "timeout" u64) (result 48)))
    (export (;3;) "poll-for" (func 0) (func (type 49)))
    (type (;50;) (borrow 41))
    (type (;51;) (option 45))
    (type (;52;) (tuple 51 4))
    (type (;53;) (func (param "request" 50) (result 52)))
    (export (;4;) "destination" (func 1) (func (type 53)))
    (type (;54;) (own 41))
    (type (;55;) (own 42))
    (type (;56;) (option 55))
    (type (;57;) (own 43))
    (type (;58;) (result 57 (error 44)))
    (type (;59;) (func (param "request" 54) (param "options" 56) (param "timeout" u64) (result 58)))
    (export (;5;) "handle" (func 2) (func (type 59)))
  )
  (instance $dolmen:guard/limits@0.1.0-shim-instance (;4;) (instantiate $dolmen:guard/limits@0.1.0-shim-component
      (with "import-func-poll-for" (func $poll-for))
      (with "import-func-destination" (func $destination))
      (with "import-func-handle" (func $"#func14 handle"))
      (with "import-type-pollable" (type $"#type10 pollable"))
      (with "import-type-outgoing-request" (type $"#type11 outgoing-request"))
      (with "import-type-request-options" (type $"#type12 request-options"))
      (with "import-type-future-incoming-response" (type $"#type13 future-incoming-response"))
      (with "import-type-DNS-error-payload" (type $DNS-error-payload))
      (with "import-type-TLS-alert-received-payload" (type $TLS-alert-received-payload))
      (with "import-type-field-size-payload" (type $field-size-payload))
      (with "import-type-error-code" (type $"#type14 error-code"))
      (with "import-type-scheme" (type $scheme))
      (with "import-type-pollable0" (type $"#type10 pollable"))
      (with "import-type-outgoing-request0" (type $"#type11 outgoing-request"))
      (with "import-type-scheme0" (type $scheme))
      (with "import-type-request-options0" (type $"#type12 request-options"))
      (with "import-type-future-incoming-response0" (type $"#type13 future-incoming-response"))
      (with "import-type-error-code0" (type $"#type14 error-code"))
    )
  )
  (export $dolmen:guard/limits@0.1.0 (;5;) "dolmen:guard/limits@0.1.0" (instance $dolmen:guard/limits@0.1.0-shim-instance))
  (@producers
    (processed-by "wit-component" "0.262.0")
  )
)
