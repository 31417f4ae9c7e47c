"""Live in-app notifications: each signed-in page joins its user's group.

With Redis (production) a notification delivered by any worker reaches the
group at once. The embedded mode's in-memory channel layer lives inside the
one Daphne process, so there the consumer also looks for new rows every few
seconds: the browser sees the same messages either way."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import InMemoryChannelLayer
from django.conf import settings

from apps.notifications.selectors import in_app_notifications_after, latest_in_app_id
from apps.notifications.senders import user_group_name
from apps.notifications.services import unread_count

CLOSE_UNAUTHENTICATED = 4401


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    user_id: int
    group: str
    last_id: int = 0
    poller: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user_id = user.pk
        self.group = user_group_name(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.last_id = await database_sync_to_async(latest_in_app_id)(user_id=self.user_id)
        await self.send_json(
            {"type": "unread", "unread": await database_sync_to_async(unread_count)(user_id=self.user_id)}
        )
        if isinstance(self.channel_layer, InMemoryChannelLayer):
            self.poller = asyncio.create_task(self._poll())

    async def disconnect(self, code: int) -> None:
        if self.poller is not None:
            self.poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.poller
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        # The page only listens; reading and marking go through HTTP. Whatever
        # arrives, well-formed or not, gets an error message, never a crash.
        await self.send_json({"type": "error", "error": "this socket accepts no messages"})

    async def notification_created(self, event: dict[str, Any]) -> None:
        if event["id"] <= self.last_id:
            return
        self.last_id = event["id"]
        await self.send_json(
            {
                "type": "notification",
                "id": event["id"],
                "title": event["title"],
                "body": event["body"],
                "url": event["url"],
                "urgent": event["urgent"],
                "unread": event["unread"],
            }
        )

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(settings.NOTIFICATIONS_EMBEDDED_POLL_S)
            for event in await database_sync_to_async(in_app_notifications_after)(
                user_id=self.user_id, after_id=self.last_id
            ):
                await self.notification_created(event)
