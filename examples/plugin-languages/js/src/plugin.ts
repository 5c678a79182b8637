// A GitHub push event as a chat message: {"text": "<pusher> pushed <n> commits to <repo>"}
// ("1 commit" for one). An event without those fields is a fatal failure. TypeScript: the
// build strips the types; `tsc -p .` checks them against the SDK's declarations.

import { Failure, transform, type Event } from "@switchyard/plugin";

interface Push {
  pusher?: { name?: unknown };
  repository?: { full_name?: unknown };
  commits?: unknown;
}

function missing(field: string): Failure {
  return Failure.fatal(`not a push event: no \`${field}\``);
}

export const handle = transform((event: Event): Event => {
  const push = event.bodyJson() as Push | null;
  const pusher = push?.pusher?.name;
  if (typeof pusher !== "string") throw missing("pusher.name");
  const repository = push?.repository?.full_name;
  if (typeof repository !== "string") throw missing("repository.full_name");
  const commits = push?.commits;
  if (!Array.isArray(commits)) throw missing("commits");
  const noun = commits.length === 1 ? "commit" : "commits";
  event.setBodyJson({ text: `${pusher} pushed ${commits.length} ${noun} to ${repository}` });
  event.setHeader("content-type", "application/json");
  return event;
});
