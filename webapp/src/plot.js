// Minimal canvas line plot (no chart library): min-max normalised trace over a light grid.

export function drawTrace(canvas, values, color, emptyText) {
  const dpr = globalThis.devicePixelRatio || 1;
  const w = Math.round(canvas.clientWidth * dpr) || canvas.width;
  const h = Math.round(canvas.clientHeight * dpr) || canvas.height;
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, w, h);
  ctx.strokeStyle = '#e3e7ec';
  ctx.lineWidth = 1;
  for (let i = 1; i < 10; i++) {
    const x = (i * w) / 10;
    ctx.beginPath();
    ctx.moveTo(x, 0);
    ctx.lineTo(x, h);
    ctx.stroke();
  }
  if (!values || values.length < 2) {
    ctx.fillStyle = '#8a97a6';
    ctx.font = `${14 * dpr}px system-ui, sans-serif`;
    ctx.fillText(emptyText, 12 * dpr, h / 2);
    return;
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo || 1;
  const pad = 8 * dpr;
  ctx.strokeStyle = color;
  ctx.lineWidth = 2 * dpr;
  ctx.beginPath();
  for (let i = 0; i < values.length; i++) {
    const x = (i / (values.length - 1)) * w;
    const y = pad + (1 - (values[i] - lo) / span) * (h - 2 * pad);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  }
  ctx.stroke();
}
