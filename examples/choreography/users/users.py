"""The users service of the choreography example (Python, on clients/python).

A member of consumer group "users": it reads v1.user.signup actions and, for each, publishes
a v1.user.signedup event with the header `causation-id` set to the action's id.

The event's own id is derived from the action's id (a UUIDv5 of it), not drawn at random.
Delivery is at least once, so this service may see an action twice (after a rebalance or a
reconnect, the records since its last commit come again); publishing the same event id
again is then recognised by the partition's leader within the topic's dedupe window
(`duplicate=True`, nothing written), and past it the email service's outbox check still
sends one email per event id. Offsets are committed once every event of a batch is
acknowledged, so an action is never committed before its event exists.

    python users.py --bootstrap HOST:PORT[,HOST:PORT...]
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import time
import uuid

import stave

ACTIONS = "v1.user.signup"
EVENTS = "v1.user.signedup"
# Event ids are uuid5(EVENT_ID_NAMESPACE, action id): the same action always yields the same event id.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c6b4e-35a4-4c59-9a55-4b1f0c3e7a21")

log = logging.getLogger("users")


def event_id_for(action_id: str) -> str:
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, action_id))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:7070")
    parser.add_argument("--group", default="users")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s users %(message)s", stream=sys.stderr)

    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True
        log.info("signal %d: stopping", signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def assigned(tps):
        log.info("assigned: %s", " ".join(f"{tp.topic}/{tp.partition}@{tp.offset}" for tp in tps))

    def revoked(tps):
        log.info("revoked: %s", " ".join(f"{tp.topic}/{tp.partition}@{tp.offset}" for tp in tps))

    producer = stave.Producer(args.bootstrap, delivery_timeout_ms=60_000)
    consumer = stave.Consumer(
        args.bootstrap,
        group=args.group,
        topics=[ACTIONS],
        from_beginning=True,
        on_assign=assigned,
        on_revoke=revoked,
        reconnect_timeout_ms=120_000,
    )
    handled = republished = 0
    uncommitted = False
    try:
        while not stopping:
            records = consumer.poll_many(500, timeout=0.5)
            if not records:
                if uncommitted:  # a commit that failed earlier: try again while idle
                    uncommitted = not commit(consumer)
                continue
            futures = []
            for record in records:
                action_id = record.id
                if not action_id:
                    log.warning("action at %s/%d@%d has no id; ignored", record.topic, record.partition, record.offset)
                    continue
                action = json.loads(record.value)
                event = {
                    "user": action["user"],
                    "email": action["email"],
                    "signed_up_at_ms": int(time.time() * 1000),
                }
                futures.append(
                    producer.publish(
                        EVENTS,
                        json.dumps(event),
                        key=record.key,
                        headers={"id": event_id_for(action_id), "causation-id": action_id},
                    )
                )
            for future in futures:
                meta = future.result()  # raises after the delivery timeout: the service stops
                if meta.duplicate:
                    republished += 1
            handled += len(records)
            uncommitted = not commit(consumer)
            log.info("handled %d actions (%d events were already written: republished after a redelivery)", handled, republished)
    finally:
        consumer.close()
        producer.close()
        log.info("stopped after %d actions", handled)
    return 0


def commit(consumer: stave.Consumer) -> bool:
    try:
        consumer.commit()
        return True
    except stave.StaveError as err:
        log.warning("commit failed (retried later): %s", err)
        return False


if __name__ == "__main__":
    sys.exit(main())
