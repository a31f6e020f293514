// scripts/bench/overlap.mjs — does Deno's WebGPU overlap host recording with GPU work, and what
// does a mapAsync per step cost? Run on the GPU machine:
//   source .gpu/setup.sh && /tmp/deno run -A --unstable-webgpu scripts/bench/overlap.mjs
// Figures in docs/PERFORMANCE.md ("Engine and H200").
const adapter = await navigator.gpu.requestAdapter();
const device = await adapter.requestDevice({ requiredFeatures: ["timestamp-query"] });
const src = `
override ITER: u32 = 1000u;
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<uniform> u: vec4<u32>;
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  var a = out[gid.x];
  for (var i = 0u; i < ITER; i++) { a = a * 0.999 + 0.001; }
  out[gid.x] = a;
  if (gid.x == 0u) { out[0] = f32(u.x); }
}`;
const mod = device.createShaderModule({ code: src });
const mk = (iter) => device.createComputePipeline({ layout: "auto", compute: { module: mod, entryPoint: "main", constants: { ITER: iter } } });
const WG = 264; // 2 per SM
const buf = device.createBuffer({ size: WG * 256 * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
const ring = Array.from({ length: 17 }, () => device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }));
const qs = device.createQuerySet({ type: "timestamp", count: 2 });
const qres = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
const qrd = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
let errors = 0;
device.onuncapturederror = (e) => { if (errors++ < 3) console.log("GPU error:", e.error.message); };
function groupFor(p) { return device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }, { binding: 1, resource: { buffer: ub } }] }); }
const ub = device.createBuffer({ size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
const u32 = new Uint32Array(8);
function encode(p, g, disp, slot, ts) {
  device.queue.writeBuffer(ub, 0, u32);
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass(ts ? { timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : undefined);
  pass.setPipeline(p);
  for (let i = 0; i < disp; i++) { pass.setBindGroup(0, g); pass.dispatchWorkgroups(WG); }
  pass.end();
  if (slot >= 0) enc.copyBufferToBuffer(buf, 0, ring[slot], 0, 16);
  if (ts) { enc.resolveQuerySet(qs, 0, 2, qres, 0); enc.copyBufferToBuffer(qres, 0, qrd, 0, 16); }
  device.queue.submit([enc.finish()]);
}
async function gpuTime(p, g, disp) {
  encode(p, g, disp, -1, true);
  await qrd.mapAsync(GPUMapMode.READ);
  const t = new BigUint64Array(qrd.getMappedRange());
  const ms = Number(t[1] - t[0]) / 1e6;
  qrd.unmap();
  return ms;
}
const busy = (ms) => { const t = performance.now(); while (performance.now() - t < ms); };
async function run(label, p, g, disp, steps, mode, hostMS = 0) {
  await device.queue.onSubmittedWorkDone();
  const t0 = performance.now();
  let enc = 0, bad = 0;
  const inflight = [];
  for (let s = 0; s < steps; s++) {
    const a = performance.now();
    if (hostMS) busy(hostMS);
    u32[0] = s;
    encode(p, g, disp, mode !== "none" && mode !== "sync" ? s % 17 : -1, false);
    enc += performance.now() - a;
    if (mode === "sync") await device.queue.onSubmittedWorkDone();
    if (mode === "lazy") {
      // map the slot of step s-15 only now (it is likely done)
      const o = s - 15;
      if (o >= 0) {
        const rb = ring[o % 17];
        await rb.mapAsync(GPUMapMode.READ);
        if (new Float32Array(rb.getMappedRange())[0] !== o) bad++;
        rb.unmap();
      }
    }
    if (mode === "batch8" && s % 8 === 7) {
      const rb = ring[s % 17], want = s;
      inflight.push(rb.mapAsync(GPUMapMode.READ).then(() => { if (new Float32Array(rb.getMappedRange())[0] !== want) bad++; rb.unmap(); }));
      if (inflight.length >= 2) await inflight.shift();
    }
    if (mode === "ring") {
      const rb = ring[s % 17], want = s;
      inflight.push(rb.mapAsync(GPUMapMode.READ).then(() => { if (new Float32Array(rb.getMappedRange())[0] !== want) bad++; rb.unmap(); }));
      if (inflight.length >= 16) await inflight.shift();
    }
  }
  await Promise.all(inflight);
  await device.queue.onSubmittedWorkDone();
  const wall = performance.now() - t0;
  console.log(`${label}: ${(wall / steps).toFixed(3)} ms/step wall, host ${(enc / steps).toFixed(3)} ms/step (steps ${steps}, stale readbacks ${bad}, errors ${errors})`);
}
for (const [iter, disp] of [[270, 300], [81000, 1]]) {
  const p = mk(iter), g = groupFor(p);
  await gpuTime(p, g, disp);
  const gt = (await gpuTime(p, g, disp) + await gpuTime(p, g, disp)) / 2;
  console.log(`== ITER ${iter} x ${disp} dispatches: GPU ${gt.toFixed(3)} ms per pass`);
  await run("sync", p, g, disp, 20, "sync");
  await run("pipelined", p, g, disp, 100, "none");
  await run("ring16", p, g, disp, 100, "ring");
  await run("lazy15", p, g, disp, 100, "lazy");
  await run("lazy15+host1.5ms", p, g, disp, 100, "lazy", 1.5);
  await run("batch8", p, g, disp, 100, "batch8");
  await run("batch8+host1.5ms", p, g, disp, 100, "batch8", 1.5);
  await run("pipelined+host1.5ms", p, g, disp, 100, "none", 1.5);
  await run("ring16+host1.5ms", p, g, disp, 100, "ring", 1.5);
}
