// ember-runner.js — records one pass of the Ember WebGPU engine (webgpu/engine).
//
// It writes the Step uniform, the token ids and the RoPE rows of the pass,
// then records every op into one command buffer (one compute pass between
// copies) and submits it: one JS call per pass instead of hundreds of
// syscall/js calls. The worker loads this file with importScripts, so the
// engine needs no eval under a strict Content-Security-Policy; where eval is
// allowed (Deno, pages without a CSP) the Go engine evaluates the same text,
// embedded with go:embed, when emberPassRunner is not defined yet.
globalThis.emberPassRunner = function (device, bufs, pipes, groups, stepBuf, tokBuf, csBuf, tokArr, csTable, csRow) {
  const stepU32 = new Uint32Array(8), stepF32 = new Float32Array(stepU32.buffer);
  const d = (k, a, T, pos) => k === 0 ? a : k === 1 ? T : k === 2 ? Math.ceil(T / a) : Math.ceil((pos + T) / a);
  const stats = { passes: 0, dispatches: 0, encodeMS: 0, submitMS: 0 };
  run.stats = stats;
  return run;
  // rbBuf, rbOff: where a copy to buffer -2 goes (the step's id readback slot)
  function run(ops, T, pos, temp, topK, topP, minP, rnd, rbBuf, rbOff) {
    const t0 = performance.now();
    stepU32[0] = pos; stepU32[1] = T; stepF32[2] = temp; stepU32[3] = topK;
    stepF32[4] = topP; stepF32[5] = minP; stepF32[6] = rnd;
    const q = device.queue;
    q.writeBuffer(bufs[stepBuf], 0, stepU32);
    q.writeBuffer(bufs[tokBuf], 0, tokArr, 0, T);
    q.writeBuffer(bufs[csBuf], 0, csTable, pos * csRow, T * csRow);
    const enc = device.createCommandEncoder();
    let pass = null, last = -1;
    for (let i = 0; i < ops.length; i += 8) {
      const p = ops[i];
      if (p < 0) {
        if (pass) { pass.end(); pass = null; }
        const slot = ops[i + 2] === -2;
        enc.copyBufferToBuffer(bufs[ops[i + 1]], (T - 1) * ops[i + 4], bufs[slot ? rbBuf : ops[i + 2]], slot ? rbOff : ops[i + 5], ops[i + 3]);
        continue;
      }
      if (!pass) { pass = enc.beginComputePass(); last = -1; }
      if (p !== last) { pass.setPipeline(pipes[p]); last = p; }
      pass.setBindGroup(0, groups[ops[i + 1]]);
      pass.dispatchWorkgroups(d(ops[i + 2], ops[i + 3], T, pos), d(ops[i + 4], ops[i + 5], T, pos), d(ops[i + 6], ops[i + 7], T, pos));
      stats.dispatches++;
    }
    if (pass) pass.end();
    const cb = enc.finish();
    const t1 = performance.now();
    q.submit([cb]);
    stats.passes++;
    stats.encodeMS += t1 - t0;
    stats.submitMS += performance.now() - t1;
  }
};
