//! Switchyard plugins in Zig: the `switchyard` module a plugin imports.
//!
//! Owns the export the world asks for (`handle`, made by `exportHandle`): it wraps the C
//! bindings' event in an `Event`, calls the plugin's handler, and turns its `Answer` into the
//! verdict or failure the host reads.
//! Everything the handler allocates from `arena` is freed after the answer has been copied, so
//! warm instances do not grow. It must not hold state between calls, and it leaves the
//! component-model details to the C SDK's helpers and bindings (the `c` module is
//! `switchyard.h` translated by `zig translate-c`; see `plugin.mk`).
//!
//! The semantics match the other SDKs: header names compare case-insensitively; the verifier
//! rejections are 401 `missing_signature` / `bad_signature` / `stale_timestamp`; an accept with
//! a dedupe key is a `modify` setting the metadata key `dedupe-key`; JSON strings are escaped
//! the way `serde_json`, `JSON.stringify` and Python's `json.dumps(ensure_ascii=False)` do.

const std = @import("std");

/// The C bindings and the C SDK's helpers, for what this module does not wrap.
pub const c = @import("c");

/// An event, borrowed for the duration of one call.
pub const Event = struct {
    raw: *const c.plugin_event_t,

    /// `evt_` followed by a ULID.
    pub fn id(self: Event) []const u8 {
        return text(self.raw.id);
    }

    /// The id of the source it arrived on, e.g. `github`.
    pub fn source(self: Event) []const u8 {
        return text(self.raw.source);
    }

    /// The event type, e.g. `github.push`.
    pub fn eventType(self: Event) []const u8 {
        return text(self.raw.type);
    }

    /// The NATS subject it arrived on, if any.
    pub fn subject(self: Event) ?[]const u8 {
        return if (self.raw.subject.is_some) text(self.raw.subject.val) else null;
    }

    /// The body exactly as received.
    pub fn body(self: Event) []const u8 {
        return bytes(self.raw.body.ptr, self.raw.body.len);
    }

    /// When the host received it, in unix milliseconds.
    pub fn receivedAt(self: Event) u64 {
        return self.raw.received_at;
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(self: Event, name: []const u8) ?[]const u8 {
        return lookup(self.raw.headers, name, true);
    }

    /// The metadata value of `key`, if set.
    pub fn metadata(self: Event, key: []const u8) ?[]const u8 {
        return lookup(self.raw.metadata, key, false);
    }

    /// Whether the `content-type` header is exactly `application/json`.
    pub fn isJson(self: Event) bool {
        const content_type = self.header("content-type") orelse return false;
        return std.mem.eql(u8, content_type, "application/json");
    }
};

/// A refusal, for the verify stage: the sender is answered with `status` and
/// `{"code": code, "detail": message}`.
pub const Rejection = struct {
    status: u16,
    code: []const u8,
    message: []const u8,
};

/// A new body, and the `content-type` to set with it (none: the header stays as it is).
pub const NewBody = struct {
    body: []const u8,
    content_type: ?[]const u8 = null,
};

/// What the handler answers.
pub const Answer = union(enum) {
    /// The event goes on unchanged.
    pass,
    /// Not this event: it goes no further on this path.
    drop,
    /// The event is refused (verify stage only).
    reject: Rejection,
    /// A verifier's accept: `pass` without a key, a `modify` setting `dedupe-key` with one.
    accept: ?[]const u8,
    /// The event goes on with a new body.
    modify_body: NewBody,
    /// A bug or input the plugin cannot handle: the binding's `on_error` policy applies.
    fatal: []const u8,
    /// Something transient: the sender is asked to retry.
    retry: []const u8,

    pub fn missingSignature(message: []const u8) Answer {
        return .{ .reject = .{ .status = 401, .code = "missing_signature", .message = message } };
    }

    pub fn badSignature(message: []const u8) Answer {
        return .{ .reject = .{ .status = 401, .code = "bad_signature", .message = message } };
    }

    pub fn staleTimestamp(message: []const u8) Answer {
        return .{ .reject = .{ .status = 401, .code = "stale_timestamp", .message = message } };
    }

    /// A new body; `content-type` is set to `content_type` unless the event already has
    /// exactly that value, so the patch holds only what changes (as the other SDKs' transforms
    /// answer).
    pub fn modifyBody(event: Event, new_body: []const u8, content_type: []const u8) Answer {
        const unchanged = if (event.header("content-type")) |current|
            std.mem.eql(u8, current, content_type)
        else
            false;
        return .{ .modify_body = .{
            .body = new_body,
            .content_type = if (unchanged) null else content_type,
        } };
    }
};

// === the host ===

/// The level of a log line.
pub const Level = enum(u8) { trace, debug, info, warn, @"error" };

/// Writes a line to the host's log, tagged with the plugin and event ids.
pub fn log(level: Level, message: []const u8) void {
    var line = borrowed(message);
    c.switchyard_plugin_host_log(@intFromEnum(level), &line);
}

/// The binding's config value of `key`, copied into `arena`, or null.
pub fn config(arena: std.mem.Allocator, key: []const u8) error{OutOfMemory}!?[]const u8 {
    var name = borrowed(key);
    var value: c.plugin_string_t = .{};
    if (!c.switchyard_plugin_host_config(&name, &value)) return null;
    defer c.plugin_string_free(&value);
    return try arena.dupe(u8, text(value));
}

/// The binding's config value of `key`; a missing key is `error.MissingConfig`, which a
/// handler returns as a fatal failure naming the key.
pub fn requireConfig(arena: std.mem.Allocator, key: []const u8) error{ OutOfMemory, MissingConfig }![]const u8 {
    if (try config(arena, key)) |value| return value;
    failure_message = std.fmt.bufPrint(&failure_buffer, "missing config key `{s}`", .{key}) catch
        "missing config key";
    return error.MissingConfig;
}

/// The host's clock in unix milliseconds (fixed by `switchyard plugin test` fixtures).
pub fn nowMs() u64 {
    return c.switchyard_plugin_host_now_ms();
}

// === crypto, with secrets the plugin never sees ===

/// A crypto call the host could not make (an unknown secret, one not listed in the binding's
/// `secrets`, bad input). Returned from `handle`, it becomes a fatal failure whose message
/// says why, e.g. ``unknown secret `acme` ``.
pub const CryptoError = error{CryptoFailed};

/// How the host turns a secret's bytes into a key.
pub const KeyEncoding = enum(u8) { raw, standard_webhooks };

/// Whether `mac` is HMAC-SHA256 of `data` keyed with the secret named `secret`.
pub fn hmacSha256Verify(secret: []const u8, data: []const u8, mac: []const u8) CryptoError!bool {
    return verify(c.switchyard_plugin_crypto_hmac_sha256_verify, secret, data, mac);
}

/// Whether `mac` is HMAC-SHA1 of `data` keyed with the secret named `secret`.
pub fn hmacSha1Verify(secret: []const u8, data: []const u8, mac: []const u8) CryptoError!bool {
    return verify(c.switchyard_plugin_crypto_hmac_sha1_verify, secret, data, mac);
}

/// Whether `mac` is HMAC-SHA256 of `data` keyed with the secret decoded per `encoding`.
pub fn hmacSha256VerifyWith(secret: []const u8, encoding: KeyEncoding, data: []const u8, mac: []const u8) CryptoError!bool {
    var name = borrowed(secret);
    var content = list(data);
    var expected = list(mac);
    var valid = false;
    var failure: c.switchyard_plugin_crypto_crypto_error_t = .{};
    if (c.switchyard_plugin_crypto_hmac_sha256_verify_with(&name, @intFromEnum(encoding), &content, &expected, &valid, &failure)) return valid;
    return cryptoFailed(&failure);
}

/// Whether `signature` is an ed25519 signature of `data` by the public key in the secret
/// named `public_key`.
pub fn ed25519Verify(public_key: []const u8, data: []const u8, signature: []const u8) CryptoError!bool {
    return verify(c.switchyard_plugin_crypto_ed25519_verify, public_key, data, signature);
}

/// The SHA-256 digest of `data`.
pub fn sha256(data: []const u8) [32]u8 {
    var content = list(data);
    var digest: c.plugin_list_u8_t = .{};
    c.switchyard_plugin_crypto_sha256(&content, &digest);
    defer c.plugin_list_u8_free(&digest);
    var out: [32]u8 = undefined;
    @memcpy(&out, bytes(digest.ptr, digest.len)[0..32]);
    return out;
}

/// Decodes hex (either case) into `arena`; null when `hex` is not hex.
pub fn decodeHex(arena: std.mem.Allocator, hex: []const u8) error{OutOfMemory}!?[]u8 {
    if (hex.len % 2 != 0) return null;
    const out = try arena.alloc(u8, hex.len / 2);
    return std.fmt.hexToBytes(out, hex) catch null;
}

// === JSON ===

/// A JSON value: a view of its text inside the document (the C SDK's validating reader).
pub const Json = struct {
    raw: c.sy_json,

    /// The document's top-level value; `isValid` is false unless the whole text is one valid
    /// JSON value (whitespace around it allowed).
    pub fn parse(document: []const u8) Json {
        return .{ .raw = c.sy_json_parse(document.ptr, document.len) };
    }

    pub fn isValid(self: Json) bool {
        return self.raw.kind != c.SY_JSON_INVALID;
    }

    /// The value's JSON text.
    pub fn source(self: Json) []const u8 {
        return bytes(self.raw.start, self.raw.len);
    }

    /// The member `key` of an object; invalid when absent or not an object.
    pub fn get(self: Json, key: [:0]const u8) Json {
        return .{ .raw = c.sy_json_get(self.raw, key.ptr) };
    }

    /// The number of elements of an array, or null when it is not one.
    pub fn arrayLength(self: Json) ?usize {
        const length = c.sy_json_array_length(self.raw);
        return if (length < 0) null else @intCast(length);
    }

    /// The decoded (unescaped, UTF-8) contents of a string value, in `arena`; null if not a
    /// string.
    pub fn string(self: Json, arena: std.mem.Allocator) error{OutOfMemory}!?[]u8 {
        var buffer: c.sy_buffer = .{};
        defer c.sy_buffer_free(&buffer);
        if (!c.sy_json_string(self.raw, &buffer)) return null;
        return try arena.dupe(u8, bytes(buffer.data, buffer.len));
    }
};

/// Appends `value` to `out` as a JSON string, quotes included, escaped as the other SDKs do.
pub fn appendJsonString(out: *std.ArrayList(u8), arena: std.mem.Allocator, value: []const u8) error{OutOfMemory}!void {
    var buffer: c.sy_buffer = .{};
    defer c.sy_buffer_free(&buffer);
    c.sy_buffer_append_json_string(&buffer, value.ptr, value.len);
    try out.appendSlice(arena, bytes(buffer.data, buffer.len));
}

// === the export ===

var failure_buffer: [512]u8 = undefined;
/// The reason behind the last `error.CryptoFailed` or `error.MissingConfig`.
var failure_message: []const u8 = "";

/// Exports `handler` as the world's `handle`. A plugin's root file says
/// `comptime { switchyard.exportHandle(handle); }` with
/// `pub fn handle(event: switchyard.Event, arena: std.mem.Allocator) !switchyard.Answer`.
/// An error returned by the handler is a fatal failure: `error.CryptoFailed` and
/// `error.MissingConfig` carry the host's reason, any other error its name.
pub fn exportHandle(comptime handler: anytype) void {
    const Export = struct {
        fn handle(ev: [*c]c.plugin_event_t, ret: [*c]c.plugin_verdict_t, err: [*c]c.plugin_failure_t) callconv(.c) bool {
            defer c.plugin_event_free(ev);
            var arena_state = std.heap.ArenaAllocator.init(std.heap.c_allocator);
            defer arena_state.deinit();
            const arena = arena_state.allocator();
            const answer = handler(.{ .raw = ev }, arena) catch |failure| {
                const any: anyerror = failure;
                const message = switch (any) {
                    error.CryptoFailed, error.MissingConfig => failure_message,
                    else => @errorName(any),
                };
                return writeFailure(err, c.sy_fatal, arena, message);
            };
            return write(answer, ret, err, arena);
        }
    };
    @export(&Export.handle, .{ .name = "exports_plugin_handle" });
}

fn write(answer: Answer, ret: [*c]c.plugin_verdict_t, err: [*c]c.plugin_failure_t, arena: std.mem.Allocator) bool {
    return switch (answer) {
        .pass => c.sy_pass(ret),
        .drop => c.sy_drop(ret),
        .reject => |rejection| c.sy_reject(
            ret,
            rejection.status,
            (arena.dupeSentinel(u8, rejection.code, 0) catch return outOfMemory(err)).ptr,
            (arena.dupeSentinel(u8, rejection.message, 0) catch return outOfMemory(err)).ptr,
        ),
        .accept => |key| if (key) |dedupe_key| blk: {
            const value = borrowed(dedupe_key);
            break :blk c.sy_accept(ret, &value);
        } else c.sy_accept(ret, null),
        .modify_body => |new| c.sy_modify_body(
            ret,
            new.body.ptr,
            new.body.len,
            if (new.content_type) |content_type|
                (arena.dupeSentinel(u8, content_type, 0) catch return outOfMemory(err)).ptr
            else
                null,
        ),
        .fatal => |message| writeFailure(err, c.sy_fatal, arena, message),
        .retry => |message| writeFailure(err, c.sy_retry, arena, message),
    };
}

fn writeFailure(err: [*c]c.plugin_failure_t, comptime kind: anytype, arena: std.mem.Allocator, message: []const u8) bool {
    const terminated = arena.dupeSentinel(u8, message, 0) catch return outOfMemory(err);
    return kind(err, terminated.ptr);
}

fn outOfMemory(err: [*c]c.plugin_failure_t) bool {
    return c.sy_fatal(err, "out of memory");
}

// === helpers over the C types ===

fn text(value: c.plugin_string_t) []const u8 {
    return bytes(value.ptr, value.len);
}

fn bytes(pointer: anytype, length: usize) []const u8 {
    if (length == 0) return "";
    return @as([*]const u8, @ptrCast(pointer))[0..length];
}

/// A string the bindings only read during the call.
fn borrowed(value: []const u8) c.plugin_string_t {
    return .{ .ptr = @constCast(value.ptr), .len = value.len };
}

fn list(value: []const u8) c.plugin_list_u8_t {
    return .{ .ptr = @constCast(value.ptr), .len = value.len };
}

fn lookup(pairs: c.plugin_list_tuple2_string_string_t, name: []const u8, ignore_case: bool) ?[]const u8 {
    if (pairs.len == 0) return null;
    for (pairs.ptr[0..pairs.len]) |pair| {
        const key = text(pair.f0);
        const same = if (ignore_case) std.ascii.eqlIgnoreCase(key, name) else std.mem.eql(u8, key, name);
        if (same) return text(pair.f1);
    }
    return null;
}

fn verify(comptime call: anytype, secret: []const u8, data: []const u8, mac: []const u8) CryptoError!bool {
    var name = borrowed(secret);
    var content = list(data);
    var expected = list(mac);
    var valid = false;
    var failure: c.switchyard_plugin_crypto_crypto_error_t = .{};
    if (call(&name, &content, &expected, &valid, &failure)) return valid;
    return cryptoFailed(&failure);
}

fn cryptoFailed(failure: *c.switchyard_plugin_crypto_crypto_error_t) CryptoError {
    defer c.switchyard_plugin_crypto_crypto_error_free(failure);
    const name = text(failure.val.unknown_secret);
    failure_message = switch (failure.tag) {
        c.SWITCHYARD_PLUGIN_CRYPTO_CRYPTO_ERROR_UNKNOWN_SECRET => std.fmt.bufPrint(&failure_buffer, "unknown secret `{s}`", .{name}),
        c.SWITCHYARD_PLUGIN_CRYPTO_CRYPTO_ERROR_NOT_ALLOWED => std.fmt.bufPrint(&failure_buffer, "secret `{s}` is not listed in this plugin's `secrets`", .{name}),
        else => std.fmt.bufPrint(&failure_buffer, "bad crypto input: {s}", .{name}),
    } catch "a crypto call failed";
    return error.CryptoFailed;
}
