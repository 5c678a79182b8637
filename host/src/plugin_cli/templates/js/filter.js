// A filter: lets through events whose JSON body has "action" equal to the `action` config
// value (default `opened`), drops the rest.

import { filter, host } from "@switchyard/plugin";

export const handle = filter((event) => {
  const wanted = host.config("action") ?? "opened";
  let body;
  try {
    body = event.bodyJson();
  } catch {
    return false;
  }
  return body !== null && typeof body === "object" && body.action === wanted;
});
