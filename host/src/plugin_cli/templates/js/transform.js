// A transform: wraps the JSON body as {"type": <event type>, "data": <body>}.

import { transform } from "@switchyard/plugin";

export const handle = transform((event) => {
  const data = event.bodyJson(); // not JSON: a fatal failure, the binding's on_error decides
  event.setBodyJson({ type: event.type, data });
  event.setHeader("content-type", "application/json");
  return event;
});
