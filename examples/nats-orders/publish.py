"""Publishes one order event as a structured CloudEvent with nats-py.

    python publish.py [nats://127.0.0.1:4222]

Switchyard keeps a structured CloudEvent whole: the receiver gets this JSON document.
"""

import asyncio
import json
import sys
import uuid

import nats


async def main(url: str) -> None:
    connection = await nats.connect(url)
    jetstream = connection.jetstream()
    event_id = str(uuid.uuid4())
    event = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/services/checkout",
        "type": "order.created",
        "datacontenttype": "application/json",
        "data": {"order": 100, "total": "5.00", "currency": "EUR"},
    }
    ack = await jetstream.publish(
        "orders.eu.created",
        json.dumps(event).encode(),
        headers={"content-type": "application/cloudevents+json", "Nats-Msg-Id": event_id},
    )
    print(f"published {event_id} (stream sequence {ack.seq})")
    await connection.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "nats://127.0.0.1:4222"))
