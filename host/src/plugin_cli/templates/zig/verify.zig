//! A verifier: `x-signature` must be the hex HMAC-SHA256 of the raw body, keyed with the secret
//! named by the `secret` config value. `x-delivery-id`, when present, is the dedupe key.

const std = @import("std");
const switchyard = @import("switchyard");

comptime {
    switchyard.exportHandle(handle);
}

pub fn handle(event: switchyard.Event, arena: std.mem.Allocator) !switchyard.Answer {
    const secret = try switchyard.requireConfig(arena, "secret");
    const signature = event.header("x-signature") orelse "";
    const mac = try switchyard.decodeHex(arena, signature) orelse &.{};
    if (mac.len == 0) {
        return switchyard.Answer.missingSignature("`x-signature` is missing or not hex");
    }
    if (!try switchyard.hmacSha256Verify(secret, event.body(), mac)) {
        return switchyard.Answer.badSignature("the signature does not match the body");
    }
    return .{ .accept = event.header("x-delivery-id") };
}
