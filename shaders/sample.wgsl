// sample: picks the next token on the GPU, following llama.SampleParams
// exactly in procedure (probabilities in f32 here, so a draw that lands on a
// rounding boundary can differ from the CPU's float64 sums):
//  1. temperature ≤ 0: argmax, lowest id on ties.
//  2. p = softmax(logits / temperature).
//  3. Ranking by p (descending, lower id first): top_k keeps the first k,
//     0 < top_p < 1 the shortest prefix with Σp ≥ top_p, min_p the tokens with
//     p ≥ min_p·max p; without any filter every token is kept.
//  4. The kept tokens are walked in id order summing p; the first whose
//     running sum exceeds rand·Σkept is the result.
// Filtering ranks at most CAP candidates (radix select of the CAP- or k-th
// largest logit, then a bitonic sort in workgroup memory). When the answer
// might lie beyond them (top_k > CAP, a top_p/min_p set larger than CAP, or
// more than CAP ties) the kernel writes 0xFFFFFFFF: the host then samples on
// the CPU from the logits.
//
// Bindings (group 0):
//   0 logits  array<f32>  read  [N]
//   1 out     array<u32>  rw    out[OUT_INDEX] = token id or 0xFFFFFFFF
//   2 step    Step        uniform (temperature, top_k, top_p, min_p, rand)
// Overrides: N, CAP (power of two, ≤ 2048), OUT_INDEX.
// Dispatch: (1, 1, 1); workgroup of 256.

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> step: Step;

override N: u32;
override CAP: u32 = 1024u;
override OUT_INDEX: u32 = 0u;

const WG = 256u;
const NONE = 0xffffffffu;

var<workgroup> redf: array<f32, WG>;
var<workgroup> redu: array<u32, WG>;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> cp: array<f32, CAP>;
var<workgroup> ci: array<u32, CAP>;
var<workgroup> cnt: atomic<u32>;
var<workgroup> res: atomic<u32>;
var<workgroup> last: atomic<u32>;
var<workgroup> sel: array<u32, 3>; // prefix, mask, remaining
var<workgroup> keepv: u32;
var<workgroup> result: u32;

fn key(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn reduce_max(tid: u32, v: f32) -> f32 {
  redf[tid] = v;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      redf[tid] = max(redf[tid], redf[tid + off]);
    }
    workgroupBarrier();
  }
  let r = redf[0];
  workgroupBarrier();
  return r;
}

fn reduce_sum(tid: u32, v: f32) -> f32 {
  redf[tid] = v;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      redf[tid] += redf[tid + off];
    }
    workgroupBarrier();
  }
  let r = redf[0];
  workgroupBarrier();
  return r;
}

// before reports whether candidate a ranks before b when sorting by
// (p descending, id ascending) (byId: by id ascending only).
fn before(pa: f32, ia: u32, pb: f32, ib: u32, byId: bool) -> bool {
  if (byId) {
    return ia < ib;
  }
  return pa > pb || (pa == pb && ia < ib);
}

fn bitonic(tid: u32, byId: bool) {
  for (var k = 2u; k <= CAP; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      for (var i = tid; i < CAP; i += WG) {
        let l = i ^ j;
        if (l > i) {
          let up = (i & k) == 0u;
          let sw = select(before(cp[i], ci[i], cp[l], ci[l], byId), before(cp[l], ci[l], cp[i], ci[i], byId), up);
          if (sw) {
            let tp = cp[i];
            cp[i] = cp[l];
            cp[l] = tp;
            let ti = ci[i];
            ci[i] = ci[l];
            ci[l] = ti;
          }
        }
      }
      workgroupBarrier();
    }
  }
}

@compute @workgroup_size(WG)
fn sample(@builtin(local_invocation_index) tid: u32) {
  // argmax (also the greedy answer)
  var best = -3.402823e38;
  var bidx = NONE;
  for (var i = tid; i < N; i += WG) {
    let v = logits[i];
    if (bidx == NONE || v > best) {
      best = v;
      bidx = i;
    }
  }
  redf[tid] = best;
  redu[tid] = bidx;
  workgroupBarrier();
  for (var off = WG / 2u; off > 0u; off >>= 1u) {
    if (tid < off) {
      let v = redf[tid + off];
      let i = redu[tid + off];
      if (i != NONE && (redu[tid] == NONE || v > redf[tid] || (v == redf[tid] && i < redu[tid]))) {
        redf[tid] = v;
        redu[tid] = i;
      }
    }
    workgroupBarrier();
  }
  let maxv = redf[0];
  let amax = redu[0];
  workgroupBarrier();
  if (!(step.temperature > 0.0)) {
    if (tid == 0u) {
      out[OUT_INDEX] = amax;
    }
    return;
  }
  let invT = 1.0 / step.temperature;
  var ps = 0.0;
  for (var i = tid; i < N; i += WG) {
    ps += exp((logits[i] - maxv) * invT);
  }
  let inv = 1.0 / reduce_sum(tid, ps);
  let pmax = inv;

  let topK = step.top_k > 0u && step.top_k < N;
  let topP = step.top_p > 0.0 && step.top_p < 1.0;
  let minP = step.min_p > 0.0;
  if (tid == 0u) {
    atomicStore(&res, NONE);
    atomicStore(&last, 0u);
    atomicStore(&cnt, 0u);
  }
  workgroupBarrier();

  if (!topK && !topP && !minP) {
    // walk every token in id order: contiguous chunks per invocation
    let chunk = (N + WG - 1u) / WG;
    let lo = min(N, tid * chunk);
    let hi = min(N, lo + chunk);
    var cs = 0.0;
    for (var i = lo; i < hi; i++) {
      let p = exp((logits[i] - maxv) * invT) * inv;
      cs += p;
      if (p > 0.0) {
        atomicMax(&last, i);
      }
    }
    redf[tid] = cs;
    workgroupBarrier();
    if (tid == 0u) {
      var acc = 0.0;
      for (var k = 0u; k < WG; k++) {
        let v = redf[k];
        redf[k] = acc;
        acc += v;
      }
      result = bitcast<u32>(acc);
    }
    workgroupBarrier();
    let total = bitcast<f32>(result);
    let goal = step.rand * total;
    var c = redf[tid];
    if (c + cs > goal || tid == WG - 1u) {
      for (var i = lo; i < hi; i++) {
        let p = exp((logits[i] - maxv) * invT) * inv;
        if (p <= 0.0) {
          continue;
        }
        c += p;
        if (c > goal) {
          atomicMin(&res, i);
          break;
        }
      }
    }
    workgroupBarrier();
    if (tid == 0u) {
      var r = atomicLoad(&res);
      if (r == NONE) {
        r = atomicLoad(&last);
      }
      out[OUT_INDEX] = r;
    }
    return;
  }

  // candidates: the M largest logits (M = top_k, or CAP)
  var M = CAP;
  var capped = true; // candidate list cut by CAP rather than by top_k
  if (topK && step.top_k <= CAP) {
    M = step.top_k;
    capped = false;
  }
  var kmin = 0u;
  if (N > M) {
    if (tid == 0u) {
      sel[0] = 0u;
      sel[1] = 0u;
      sel[2] = M;
    }
    for (var rpass = 0u; rpass < 4u; rpass++) {
      let shift = 24u - 8u * rpass;
      atomicStore(&hist[tid], 0u);
      workgroupBarrier();
      let prefix = sel[0];
      let mask = sel[1];
      for (var i = tid; i < N; i += WG) {
        let k = key(logits[i]);
        if ((k & mask) == prefix) {
          atomicAdd(&hist[(k >> shift) & 0xffu], 1u);
        }
      }
      workgroupBarrier();
      if (tid == 0u) {
        var rem = sel[2];
        var b = 255u;
        loop {
          let h = atomicLoad(&hist[b]);
          if (h >= rem || b == 0u) {
            break;
          }
          rem -= h;
          b -= 1u;
        }
        sel[0] = prefix | (b << shift);
        sel[1] = mask | (0xffu << shift);
        sel[2] = rem;
      }
      workgroupBarrier();
    }
    kmin = sel[0];
  } else {
    capped = false;
  }
  for (var i = tid; i < CAP; i += WG) {
    cp[i] = -1.0;
    ci[i] = NONE;
  }
  workgroupBarrier();
  for (var i = tid; i < N; i += WG) {
    let l = logits[i];
    if (key(l) >= kmin) {
      let slot = atomicAdd(&cnt, 1u);
      if (slot < CAP) {
        cp[slot] = exp((l - maxv) * invT) * inv;
        ci[slot] = i;
      }
    }
  }
  workgroupBarrier();
  if (tid == 0u) {
    result = atomicLoad(&cnt);
  }
  let count = workgroupUniformLoad(&result);
  if (count > CAP) {
    if (tid == 0u) {
      out[OUT_INDEX] = NONE;
    }
    return;
  }
  bitonic(tid, false);
  if (tid == 0u) {
    var keep = count;
    var overflow = false;
    if (topK && step.top_k < keep) {
      keep = step.top_k;
    }
    if (topP) {
      var c = 0.0;
      var found = false;
      for (var i = 0u; i < keep; i++) {
        c += cp[i];
        if (c >= step.top_p) {
          keep = i + 1u;
          found = true;
          break;
        }
      }
      if (!found && capped) {
        overflow = true;
      }
    }
    if (minP) {
      let cut = step.min_p * pmax;
      while (keep > 1u && cp[keep - 1u] < cut) {
        keep -= 1u;
      }
    }
    if (capped && keep == count) {
      overflow = true;
    }
    keepv = select(keep, 0u, overflow);
  }
  let keep = workgroupUniformLoad(&keepv);
  if (keep == 0u) {
    if (tid == 0u) {
      out[OUT_INDEX] = NONE;
    }
    return;
  }
  for (var i = tid; i < CAP; i += WG) {
    if (i >= keep) {
      cp[i] = 0.0;
      ci[i] = NONE;
    }
  }
  workgroupBarrier();
  bitonic(tid, true);
  if (tid == 0u) {
    var total = 0.0;
    for (var i = 0u; i < keep; i++) {
      total += cp[i];
    }
    let goal = step.rand * total;
    var c = 0.0;
    var r = ci[keep - 1u];
    for (var i = 0u; i < keep; i++) {
      c += cp[i];
      if (c > goal) {
        r = ci[i];
        break;
      }
    }
    out[OUT_INDEX] = r;
  }
}
