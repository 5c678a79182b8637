//! A filter: lets through events whose JSON body has "action" equal to the `action` config
//! value (default `opened`), drops the rest.

const std = @import("std");
const switchyard = @import("switchyard");

comptime {
    switchyard.exportHandle(handle);
}

pub fn handle(event: switchyard.Event, arena: std.mem.Allocator) !switchyard.Answer {
    const wanted = try switchyard.config(arena, "action") orelse "opened";
    const body = switchyard.Json.parse(event.body());
    const action = try body.get("action").string(arena) orelse return .drop;
    return if (std.mem.eql(u8, action, wanted)) .pass else .drop;
}
