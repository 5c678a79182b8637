//! A transform: wraps the JSON body as {"type": <event type>, "data": <body>}.

const std = @import("std");
const switchyard = @import("switchyard");

comptime {
    switchyard.exportHandle(handle);
}

pub fn handle(event: switchyard.Event, arena: std.mem.Allocator) !switchyard.Answer {
    const data = switchyard.Json.parse(event.body());
    if (!data.isValid()) return .{ .fatal = "body is not JSON" };
    var body: std.ArrayList(u8) = .empty;
    try body.appendSlice(arena, "{\"type\":");
    try switchyard.appendJsonString(&body, arena, event.eventType());
    try body.appendSlice(arena, ",\"data\":");
    try body.appendSlice(arena, data.source());
    try body.append(arena, '}');
    return switchyard.Answer.modifyBody(event, body.items, "application/json");
}
