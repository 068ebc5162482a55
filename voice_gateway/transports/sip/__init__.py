"""SIP in: callpilot as a SIP endpoint over UDP (trunks, softphones and desk phones call it directly).

Sans-I/O codecs (`message`: SIP requests and responses, `sdp`: offer and answer, `rtp`: RTP/RFC 4733 as a
call `Codec`) and one asyncio adapter (`server`), like the other transports.
"""

from voice_gateway.transports.sip.message import SipMessage, SipParseError, parse_message
from voice_gateway.transports.sip.rtp import RtpCodec
from voice_gateway.transports.sip.sdp import SdpError, SdpOffer, answer_sdp, parse_offer

__all__ = ["RtpCodec", "SdpError", "SdpOffer", "SipMessage", "SipParseError", "answer_sdp", "parse_message",
           "parse_offer"]
