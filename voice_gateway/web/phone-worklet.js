// The softphone's audio thread: microphone -> 20 ms PCM16 chunks for the websocket, and bot audio -> speaker.
// Playback is a queue of Float32 chunks and mark names; a mark is reported once the audio before it has played.

class PhoneIO extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.frame = Math.round(sampleRate / 50); // samples in 20 ms
    this.captured = new Int16Array(this.frame);
    this.filled = 0;
    this.queue = []; // Float32Array chunks and {mark: name} entries, in order
    this.offset = 0; // read position in queue[0]
    this.playedSamples = 0; // bot audio played so far, reported to the page every ~100 ms
    this.reported = 0;
    this.blocks = 0;
    this.port.onmessage = (event) => this.command(event.data);
  }

  command(data) {
    if (data.type === "audio") {
      this.queue.push(data.samples);
    } else if (data.type === "mark") {
      this.queue.push({ mark: data.name });
    } else if (data.type === "clear") {
      // Barge-in: drop the audio; pending marks count as played (as Twilio does).
      for (const item of this.queue) if (item.mark !== undefined) this.port.postMessage({ played: item.mark });
      this.queue = [];
      this.offset = 0;
    }
  }

  capture(input) {
    for (let i = 0; i < input.length; i++) {
      const s = Math.max(-1, Math.min(1, input[i]));
      this.captured[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === this.frame) {
        const chunk = this.captured.slice();
        this.port.postMessage({ pcm: chunk.buffer }, [chunk.buffer]);
        this.filled = 0;
      }
    }
  }

  play(output) {
    let written = 0;
    while (written < output.length && this.queue.length) {
      const head = this.queue[0];
      if (head.mark !== undefined) {
        this.port.postMessage({ played: head.mark });
        this.queue.shift();
        continue;
      }
      const n = Math.min(output.length - written, head.length - this.offset);
      output.set(head.subarray(this.offset, this.offset + n), written);
      written += n;
      this.playedSamples += n;
      this.offset += n;
      if (this.offset === head.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    output.fill(0, written);
  }

  process(inputs, outputs) {
    if (inputs[0] && inputs[0][0]) this.capture(inputs[0][0]);
    if (outputs[0] && outputs[0][0]) {
      this.play(outputs[0][0]);
      for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(outputs[0][0]);
    }
    if (++this.blocks % 12 === 0 && this.playedSamples !== this.reported) {
      this.reported = this.playedSamples;
      this.port.postMessage({ playedSamples: this.playedSamples });
    }
    return true;
  }
}

registerProcessor("phone-io", PhoneIO);
