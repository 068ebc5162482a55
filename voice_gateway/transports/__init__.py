"""Phone-line transports: sans-I/O codecs for Twilio, AudioSocket and the softphone, and thin asyncio servers."""

from voice_gateway.transports.audiosocket import AudioSocketCodec, encode_frame
from voice_gateway.transports.base import MAX_MESSAGE_BYTES, Codec, LocalProtocolError
from voice_gateway.transports.connection import (
    CallConnection,
    CallGate,
    CallHandler,
    CallLimits,
    HandlerFactory,
    SocketIO,
    run_call,
)
from voice_gateway.transports.softphone import SoftphoneCodec
from voice_gateway.transports.tcp import AudioSocketServer
from voice_gateway.transports.twilio import TwilioCodec
from voice_gateway.transports.twilio_caller import TwilioCallerCodec
from voice_gateway.transports.websocket import serve_softphone, serve_twilio

__all__ = [
    "MAX_MESSAGE_BYTES",
    "AudioSocketCodec",
    "AudioSocketServer",
    "CallConnection",
    "CallGate",
    "CallHandler",
    "CallLimits",
    "Codec",
    "HandlerFactory",
    "LocalProtocolError",
    "SocketIO",
    "SoftphoneCodec",
    "TwilioCallerCodec",
    "TwilioCodec",
    "encode_frame",
    "run_call",
    "serve_softphone",
    "serve_twilio",
]
