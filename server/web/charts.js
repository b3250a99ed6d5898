// Charts drawn as inline SVG: a bar chart for unique groups and a funnel chart counted by group.
// Every label is set as text content, never parsed as markup.

const SVG_NS = "http://www.w3.org/2000/svg";

function svgElement(name, attributes = {}, text) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) {
    element.setAttribute(key, String(value));
  }
  if (text !== undefined) {
    element.textContent = text;
  }
  return element;
}

// Chooses the axis of a chart of counts: a tick step of 1, 2 or 5 times a power of ten (at
// least 1) so that about four ticks cover `value`, and the maximum as a whole number of steps.
export function countAxis(value) {
  const rough = Math.max(value, 1) / 4;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(1, [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough));
  const ticks = Math.max(1, Math.ceil(value / step));
  return { step, ticks, maximum: step * ticks };
}

function shorten(label, maxLength) {
  return label.length > maxLength ? `${label.slice(0, maxLength - 1)}…` : label;
}

// Draws vertical bars. `points` is a list of {label, value}; returns an <svg> element.
export function barChart(points, { title, valueName = "value", height = 260 } = {}) {
  const width = 640;
  const margin = { top: 44, right: 16, bottom: 54, left: 48 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const axis = countAxis(Math.max(0, ...points.map((point) => point.value)));
  const maximum = axis.maximum;

  const svg = svgElement("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${title}: ${points.map((point) => `${point.label} ${point.value}`).join(", ")}`,
  });
  svg.append(svgElement("text", { x: margin.left, y: 16, "font-weight": 600 }, title));

  for (let tick = 0; tick <= axis.ticks; tick += 1) {
    const value = axis.step * tick;
    const y = margin.top + plotHeight - (plotHeight * tick) / axis.ticks;
    svg.append(svgElement("line", { class: "grid-line", x1: margin.left, x2: width - margin.right, y1: y, y2: y }));
    svg.append(svgElement("text", { class: "muted", x: margin.left - 6, y: y + 4, "text-anchor": "end" }, formatNumber(value)));
  }
  svg.append(svgElement("line", {
    class: "axis", x1: margin.left, x2: width - margin.right,
    y1: margin.top + plotHeight, y2: margin.top + plotHeight,
  }));

  const slot = plotWidth / Math.max(points.length, 1);
  const barWidth = Math.min(56, slot * 0.7);
  points.forEach((point, index) => {
    const barHeight = (plotHeight * point.value) / maximum;
    const x = margin.left + slot * index + (slot - barWidth) / 2;
    const y = margin.top + plotHeight - barHeight;
    const bar = svgElement("rect", { class: "bar", x, y, width: barWidth, height: Math.max(barHeight, 0), rx: 3 });
    bar.append(svgElement("title", {}, `${point.label}: ${point.value} ${valueName}`));
    svg.append(bar);
    svg.append(svgElement("text", { x: x + barWidth / 2, y: y - 5, "text-anchor": "middle", "font-weight": 600 }, formatNumber(point.value)));
    svg.append(svgElement("text", {
      class: "muted", x: x + barWidth / 2, y: margin.top + plotHeight + 16, "text-anchor": "middle",
    }, shorten(point.label, Math.max(6, Math.floor(slot / 7)))));
  });

  if (points.length === 0) {
    svg.append(svgElement("text", { class: "muted", x: width / 2, y: margin.top + plotHeight / 2, "text-anchor": "middle" }, "No data"));
  }
  return svg;
}

// Draws a funnel: one bar per step with its count, the share of the first step, and the drop
// from the previous step. `steps` is a list of {label, value}; returns an <svg> element.
export function funnelChart(steps, { title, height = 280 } = {}) {
  const width = 640;
  const margin = { top: 28, right: 16, bottom: 54, left: 16 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const first = steps.length > 0 ? steps[0].value : 0;
  const maximum = Math.max(first, ...steps.map((step) => step.value), 1);

  const svg = svgElement("svg", {
    viewBox: `0 0 ${width} ${height}`,
    role: "img",
    "aria-label": `${title}: ${steps.map((step) => `${step.label} ${step.value}`).join(", ")}`,
  });
  svg.append(svgElement("text", { x: margin.left, y: 16, "font-weight": 600 }, title));

  const slot = plotWidth / Math.max(steps.length, 1);
  const barWidth = Math.min(120, slot * 0.62);
  steps.forEach((step, index) => {
    const x = margin.left + slot * index + (slot - barWidth) / 2;
    const fullHeight = plotHeight - 18;
    const barHeight = (fullHeight * step.value) / maximum;
    const baseline = margin.top + plotHeight;

    svg.append(svgElement("rect", { class: "bar secondary", x, y: baseline - fullHeight, width: barWidth, height: fullHeight, rx: 3, opacity: 0.25 }));
    const bar = svgElement("rect", { class: "bar", x, y: baseline - barHeight, width: barWidth, height: barHeight, rx: 3 });
    bar.append(svgElement("title", {}, `${step.label}: ${step.value} groups`));
    svg.append(bar);

    const share = first > 0 ? Math.round((100 * step.value) / first) : 0;
    svg.append(svgElement("text", { x: x + barWidth / 2, y: baseline - fullHeight - 6, "text-anchor": "middle", "font-weight": 600 },
      `${formatNumber(step.value)} (${share}%)`));
    svg.append(svgElement("text", { class: "muted", x: x + barWidth / 2, y: baseline + 16, "text-anchor": "middle" },
      `${index + 1}. ${shorten(step.label, Math.max(8, Math.floor(slot / 7)))}`));
    if (index > 0) {
      const previous = steps[index - 1].value;
      const dropped = previous - step.value;
      svg.append(svgElement("text", { class: "drop", x: x + barWidth / 2, y: baseline + 32, "text-anchor": "middle" },
        dropped > 0 ? `−${formatNumber(dropped)} dropped` : "no drop"));
    }
  });
  return svg;
}

export function formatNumber(value) {
  return Number.isInteger(value) ? value.toLocaleString("en-US") : value.toFixed(1);
}
