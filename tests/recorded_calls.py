"""A simulated phone call through the real pipeline whose call log feeds a records writer, for the tests that look
at what a call leaves behind (call records, the trainer's inbox)."""

from __future__ import annotations

import asyncio
import dataclasses

from callpilot.records.writer import RecordWriter
from voice_gateway.call_log import CallLog
from voice_gateway.pipeline import CallPipeline, PipelineSettings, VoiceServices
from voice_gateway.simulated_caller import CallerScript, InMemoryTwilioLine, run_caller
from voice_gateway.transports import CallConnection

CALLER = "+16175550142"  # Anna Berg (C001) in the demo contacts


def place_call(services: VoiceServices, writer: RecordWriter, script: CallerScript, **settings: object) -> str:
    """One call over the in-memory Twilio line, its call log feeding the records writer; returns the call id."""
    call_log = CallLog(None)
    call_log.subscribe(writer)
    pipeline_settings = dataclasses.replace(PipelineSettings(), **settings)  # type: ignore[arg-type]
    voice = dataclasses.replace(services, call_log=call_log, settings=pipeline_settings)
    pipelines: list[CallPipeline] = []

    def new_handler(line: CallConnection) -> CallPipeline:
        pipelines.append(CallPipeline(line, voice))
        return pipelines[0]

    asyncio.run(run_caller(InMemoryTwilioLine(new_handler, caller=CALLER), script))
    assert writer.flush(30)
    state = pipelines[0].state
    assert state is not None
    return state.call_id
