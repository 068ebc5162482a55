"""What every transport codec shares: the event and output queues, errors, and command dispatch."""

from __future__ import annotations

from typing import Protocol

from voice_gateway.events import (
    AudioOut,
    CallEnded,
    Clear,
    DisplayStatus,
    DisplayTranscript,
    ErrorKind,
    HangUp,
    InboundEvent,
    Mark,
    OutboundEvent,
    Transfer,
    TransportError,
)

MAX_MESSAGE_BYTES = 64 * 1024  # larger websocket messages or frames are a protocol violation


class LocalProtocolError(RuntimeError):
    """Our own side misused a codec (e.g. sent audio before the call started): a bug, not bad input."""


class Codec(Protocol):
    """A sans-I/O transport: bytes in -> events out; commands in -> bytes out. No sockets, no clocks."""

    transport: str

    @property
    def sample_rate(self) -> int: ...

    @property
    def close_expected(self) -> bool: ...

    def receive_data(self, data: bytes | str) -> None: ...

    @property
    def started(self) -> bool:
        """A CallStarted was emitted (the start message arrived and was accepted)."""
        ...

    def receive_eof(self) -> None: ...

    def events_received(self) -> list[InboundEvent]: ...

    def send(self, command: OutboundEvent) -> None: ...

    def data_to_send(self) -> list[bytes | str]: ...


class CodecBase:
    """Queues and bookkeeping shared by the codecs; subclasses parse input and build output."""

    transport = "unknown"

    def __init__(self) -> None:
        self._events: list[InboundEvent] = []
        self._output: list[bytes | str] = []
        self._started = False  # a CallStarted was emitted
        self._ended = False  # a CallEnded was emitted
        self._failed = False  # a fatal error happened: input is ignored from now on
        self._hung_up = False  # we sent a hang-up
        self.transfer_target: str | None = None  # where the caller goes when we leave the call (Transfer)

    # Inbound side.

    def events_received(self) -> list[InboundEvent]:
        """Events parsed since the last call, oldest first."""
        events, self._events = self._events, []
        return events

    @property
    def started(self) -> bool:
        """A CallStarted was emitted (the start message arrived and was accepted)."""
        return self._started

    def receive_eof(self) -> None:
        """The connection closed: a started call that did not end properly ends as `disconnected`."""
        self._end("disconnected")

    @property
    def close_expected(self) -> bool:
        """True once the connection should be closed (call ended, hung up, or a fatal error)."""
        return self._ended or self._failed or self._hung_up

    def _error(self, kind: ErrorKind, message: str, *, fatal: bool = False) -> None:
        self._events.append(TransportError(kind, message, fatal))
        if fatal:
            self._failed = True
            self._end("protocol_error")

    def _start(self) -> None:
        self._started = True

    def _end(self, reason: str) -> None:
        if self._started and not self._ended:
            self._events.append(CallEnded(reason))
        self._ended = True

    # Outbound side.

    def data_to_send(self) -> list[bytes | str]:
        """Messages (websocket) or chunks (TCP) to write, oldest first; str is a text message."""
        output, self._output = self._output, []
        return output

    def send(self, command: OutboundEvent) -> None:
        """Carry out an outbound command; display commands are ignored by transports without a screen."""
        match command:
            case AudioOut(pcm=pcm, sample_rate=rate):
                if rate != self.sample_rate:
                    raise LocalProtocolError(f"{rate} Hz audio sent to a {self.sample_rate} Hz {self.transport} call")
                self.send_audio(pcm)
            case Mark(name=name):
                self.send_mark(name)
            case Clear():
                self.send_clear()
            case HangUp(reason=reason):
                self.send_hangup(reason)
            case Transfer(target=target):
                self.send_transfer(target)
            case DisplayTranscript() | DisplayStatus():
                self._display(command)

    @property
    def sample_rate(self) -> int:
        raise NotImplementedError

    def send_audio(self, pcm: bytes) -> None:
        raise NotImplementedError

    def send_mark(self, name: str) -> None:
        raise NotImplementedError

    def send_clear(self) -> None:
        raise NotImplementedError

    def send_hangup(self, reason: str = "local_hangup") -> None:
        raise NotImplementedError

    def send_transfer(self, target: str) -> None:
        """Leave the call for `target`: the call ends here ("transferred") and `transfer_target` tells the
        transport where to send the caller (a transport that cannot transfer just hangs up)."""
        self.transfer_target = target
        self.send_hangup("transferred")

    def _display(self, command: DisplayTranscript | DisplayStatus) -> None:
        """Show a transcript or status line; most transports have no screen."""

    def _check_pcm(self, pcm: bytes) -> None:
        if len(pcm) % 2:
            raise LocalProtocolError(f"PCM16 needs an even number of bytes, got {len(pcm)}")
