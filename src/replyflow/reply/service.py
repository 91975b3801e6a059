"""What one reply-service process holds: settings, the store, the API token, a sender wake-up."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from replyflow.reply.store import Store
from replyflow.settings import Settings


@dataclass
class ReplyService:
    settings: Settings
    store: Store
    api_token: str
    sender_wakeup: threading.Event = field(default_factory=threading.Event)

    def wake_sender(self) -> None:
        """Tell an in-process sender loop that new replies are queued (no-op without one)."""
        self.sender_wakeup.set()
