// Chat playground: streams NDJSON events from /api/chat (the console relays the gateway's stream) into the page.
"use strict";
const histories = { a: [], b: [] };
const form = document.getElementById("chat-form");
const prompt = document.getElementById("prompt");
const compare = document.getElementById("compare");

compare.addEventListener("change", () => {
  document.getElementById("pane-b").hidden = !compare.checked;
  document.getElementById("panes").classList.toggle("two", compare.checked);
});

document.getElementById("clear").addEventListener("click", () => {
  for (const side of ["a", "b"]) {
    histories[side] = [];
    document.getElementById(`history-${side}`).replaceChildren();
  }
});

prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
});

function bubble(side, role, text) {
  const div = document.createElement("div");
  div.className = `message ${role}`;
  const head = document.createElement("div");
  head.className = "who";
  head.textContent = role === "user" ? "you" : "";
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = text;
  div.append(head, body);
  const history = document.getElementById(`history-${side}`);
  history.append(div);
  history.scrollTop = history.scrollHeight;
  return div;
}

async function stream(side, model) {
  const answer = bubble(side, "assistant", "");
  answer.classList.add("streaming");
  answer.dataset.chunks = "0";
  const head = answer.querySelector(".who");
  const body = answer.querySelector(".body");
  head.textContent = model;
  let text = "";
  const fail = (message) => {
    answer.classList.add("failed");
    body.textContent = message;
    histories[side].pop(); // the question that got no answer leaves the history
  };
  try {
    const response = await fetch("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        model,
        messages: histories[side],
        max_tokens: Number(document.getElementById("max-tokens").value) || 256,
        temperature: Number(document.getElementById("temperature").value) || 0,
      }),
    });
    if (response.status === 401) return fail("Your session ended: reload the page to log in again.");
    if (!response.ok) return fail(`The console answered ${response.status}: ${await response.text()}`);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line) continue;
        const event = JSON.parse(line);
        if (event.error) return fail(event.error);
        if (event.model) head.textContent = `${model} → ${event.model}`;
        if (event.delta) {
          text += event.delta;
          body.textContent = text;
          answer.dataset.chunks = String(Number(answer.dataset.chunks) + 1);
        }
        if (event.done) {
          body.innerHTML = event.html; // rendered and escaped by the console, code highlighted
          answer.dataset.finish = event.finish_reason || "";
        }
      }
    }
    histories[side].push({ role: "assistant", content: text });
  } catch (error) {
    fail(`The console is not reachable (${error}).`);
  } finally {
    answer.classList.remove("streaming");
    answer.dataset.done = "true";
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = prompt.value.trim();
  if (!text) return;
  prompt.value = "";
  const sides = compare.checked ? ["a", "b"] : ["a"];
  const send = document.getElementById("send");
  send.disabled = true;
  try {
    await Promise.all(sides.map((side) => {
      histories[side].push({ role: "user", content: text });
      bubble(side, "user", text);
      return stream(side, document.getElementById(`model-${side}`).value);
    }));
  } finally {
    send.disabled = false;
    prompt.focus();
  }
});
