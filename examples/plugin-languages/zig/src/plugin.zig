//! A GitHub push event as a chat message: {"text": "<pusher> pushed <n> commits to <repo>"}
//! ("1 commit" for one). An event without those fields is a fatal failure.

const std = @import("std");
const switchyard = @import("switchyard");

comptime {
    switchyard.exportHandle(handle);
}

pub fn handle(event: switchyard.Event, arena: std.mem.Allocator) !switchyard.Answer {
    const push = switchyard.Json.parse(event.body());
    if (!push.isValid()) return .{ .fatal = "body is not JSON" };
    const pusher = try push.get("pusher").get("name").string(arena) orelse
        return .{ .fatal = "not a push event: no `pusher.name`" };
    const repository = try push.get("repository").get("full_name").string(arena) orelse
        return .{ .fatal = "not a push event: no `repository.full_name`" };
    const commits = push.get("commits").arrayLength() orelse
        return .{ .fatal = "not a push event: no `commits`" };
    const text = try std.fmt.allocPrint(arena, "{s} pushed {d} {s} to {s}", .{
        pusher,
        commits,
        if (commits == 1) "commit" else "commits",
        repository,
    });
    var body: std.ArrayList(u8) = .empty;
    try body.appendSlice(arena, "{\"text\":");
    try switchyard.appendJsonString(&body, arena, text);
    try body.append(arena, '}');
    return switchyard.Answer.modifyBody(event, body.items, "application/json");
}
