// The Daka demo's web chat: two panes, each playing one persona against the real bot.
// Everything goes through the JSON API of bot/demo/webchat.py; no framework, no build step.
"use strict";

let demo = null;

function label(key, fallback) {
  return (demo && demo.labels && demo.labels[key]) || fallback;
}

// The page's own words come from the bot's catalogs, in the demo's language (/api/demo).
function applyLabels(root) {
  for (const node of root.querySelectorAll("[data-l]")) {
    node.textContent = label(node.dataset.l, node.textContent);
  }
  for (const node of root.querySelectorAll("[data-l-placeholder]")) {
    node.placeholder = label(node.dataset.lPlaceholder, node.placeholder);
  }
  for (const node of root.querySelectorAll("[data-l-title]")) {
    node.title = label(node.dataset.lTitle, node.title);
  }
}

async function call(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.error || `${response.status} ${response.statusText}`);
  }
  return body;
}

function post(path, body) {
  return call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
}

let toastTimer = null;
function toast(text) {
  const box = document.getElementById("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 4500);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// Telegram's entities count UTF-16 code units, as JavaScript strings do: slice directly.
const STYLE_TAGS = {
  bold: "b", italic: "i", underline: "u", strikethrough: "s", code: "code", pre: "pre",
  spoiler: "span", blockquote: "blockquote", expandable_blockquote: "blockquote",
  text_link: "a",
};

function linkify(text, parent) {
  // Invite links open in this demo (as /start CODE); other links as usual.
  const pattern = /https?:\/\/t\.me\/[A-Za-z0-9_]+\?start=[A-Za-z0-9_-]+/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    parent.append(text.slice(last, match.index));
    const link = element("a", "", match[0]);
    link.href = match[0];
    parent.append(link);
    last = match.index + match[0].length;
  }
  parent.append(text.slice(last));
}

function renderText(text, entities) {
  const fragment = document.createDocumentFragment();
  const styled = (entities || []).filter((e) => STYLE_TAGS[e.type]);
  const cuts = new Set([0, text.length]);
  for (const e of styled) {
    cuts.add(e.offset);
    cuts.add(e.offset + e.length);
  }
  const points = [...cuts].filter((p) => p >= 0 && p <= text.length).sort((a, b) => a - b);
  for (let i = 0; i + 1 < points.length; i++) {
    const [start, end] = [points[i], points[i + 1]];
    let node = fragment;
    for (const e of styled) {
      if (e.offset <= start && e.offset + e.length >= end) {
        const wrap = element(STYLE_TAGS[e.type], e.type === "spoiler" ? "spoiler" : "");
        if (e.type === "text_link") {
          wrap.href = e.url;
        }
        node.append(wrap);
        node = wrap;
      }
    }
    linkify(text.slice(start, end), node);
  }
  return fragment;
}

function inviteCode(url) {
  const match = /^https?:\/\/t\.me\/[A-Za-z0-9_]+\?start=([A-Za-z0-9_-]+)$/.exec(url || "");
  return match ? match[1] : null;
}

class Pane {
  constructor(root, personaId) {
    this.root = root;
    root.append(document.getElementById("pane-template").content.cloneNode(true));
    applyLabels(root);
    this.q = (selector) => root.querySelector(selector);
    this.log = this.q(".log");
    this.version = "";
    this.answersSeen = 0;
    this.abort = null;
    const select = this.q(".persona");
    for (const persona of demo.personas) {
      const option = element("option", "", persona.name);
      option.value = persona.id;
      select.append(option);
    }
    select.value = personaId;
    select.addEventListener("change", () => this.play(Number(select.value)));
    this.q(".composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = this.q(".text");
      const text = input.value.trim();
      if (text) {
        input.value = "";
        this.send(text);
      }
    });
    this.q(".menu").addEventListener("click", () => {
      const box = this.q(".commands");
      box.hidden = !box.hidden;
    });
    this.q(".open-location").addEventListener("click", () => this.toggleLocation(true));
    this.q(".close-location").addEventListener("click", () => this.toggleLocation(false));
    this.q(".send-location").addEventListener("click", () => {
      const lat = parseFloat(this.q(".lat").value);
      const lon = parseFloat(this.q(".lon").value);
      if (Number.isNaN(lat) || Number.isNaN(lon)) {
        toast(label("pick_place", "Enter a latitude and a longitude, or pick a place."));
        return;
      }
      this.sendLocation(lat, lon);
    });
    for (const place of demo.places) {
      const chip = element("button", "chip", `📍 ${place.name}`);
      chip.type = "button";
      chip.addEventListener("click", () => {
        this.q(".lat").value = place.latitude;
        this.q(".lon").value = place.longitude;
        this.sendLocation(place.latitude, place.longitude);
      });
      this.q(".presets").append(chip);
    }
    this.q(".file").addEventListener("change", (event) => {
      const file = event.target.files[0];
      event.target.value = "";
      if (file) this.sendFile(file);
    });
    this.log.addEventListener("click", (event) => {
      const link = event.target.closest("a");
      const code = link && inviteCode(link.getAttribute("href"));
      if (code) {
        event.preventDefault();
        this.send(`/start ${code}`);
      }
    });
    this.play(personaId);
  }

  get persona() {
    return demo.personas.find((p) => p.id === this.userId);
  }

  play(userId) {
    this.userId = userId;
    this.version = "";
    this.answersSeen = null;
    this.log.replaceChildren();
    this.root.dataset.user = userId;
    const persona = this.persona;
    this.q(".role").textContent = persona.role;
    const chips = this.q(".chips");
    chips.replaceChildren();
    if (persona.invite) {
      const chip = element("button", "chip invite", label("invite", "🔗 Open my invite link"));
      chip.type = "button";
      chip.title = `https://t.me/${demo.bot}?start=${persona.invite}`;
      chip.addEventListener("click", () => this.send(`/start ${persona.invite}`));
      chips.append(chip);
    }
    for (const text of persona.suggestions) {
      const chip = element("button", "chip", text);
      chip.type = "button";
      chip.title = label("send_this", "Send this");
      chip.addEventListener("click", () => this.send(text));
      chips.append(chip);
    }
    if (this.abort) this.abort.abort();
    this.poll();
  }

  async poll() {
    const controller = new AbortController();
    this.abort = controller;
    const userId = this.userId;
    while (!controller.signal.aborted) {
      try {
        const wait = this.version ? 25 : 0;
        const state = await call(
          `/api/chat/${userId}?version=${encodeURIComponent(this.version)}&wait=${wait}`,
          { signal: controller.signal },
        );
        if (!controller.signal.aborted) this.render(state);
      } catch (error) {
        if (controller.signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, 1500));
      }
    }
  }

  async act(path, body) {
    try {
      this.render(await post(`/api/chat/${this.userId}/${path}`, body));
    } catch (error) {
      toast(error.message);
    }
  }

  send(text) {
    this.q(".commands").hidden = true;
    return this.act("text", { text });
  }

  press(messageId, data) {
    return this.act("press", { message_id: messageId, data });
  }

  sendLocation(latitude, longitude) {
    this.toggleLocation(false);
    return this.act("location", { latitude, longitude });
  }

  async sendFile(file) {
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      this.render(await call(`/api/chat/${this.userId}/file`, { method: "POST", body: form }));
    } catch (error) {
      toast(error.message);
    }
  }

  toggleLocation(open) {
    this.q(".location-panel").hidden = !open;
  }

  render(state) {
    if (state.version === this.version) return;
    this.version = state.version;
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 60;
    this.log.replaceChildren();
    if (!state.messages.length) {
      const empty = "No messages yet. Open the invite link above, or send a command.";
      this.log.append(element("div", "empty", label("empty", empty)));
    }
    for (const message of state.messages) {
      this.log.append(this.renderMessage(message));
      if (message.inline) this.log.append(this.renderInline(message));
    }
    if (atBottom || state.messages.length) this.log.scrollTop = this.log.scrollHeight;
    this.renderKeyboard(state.keyboard);
    this.renderCommands(state.commands);
    const answers = state.answers || [];
    if (this.answersSeen !== null) {
      for (const answer of answers.slice(this.answersSeen)) toast(answer.text);
    }
    this.answersSeen = answers.length;
  }

  renderMessage(message) {
    const box = element("div", `msg ${message.from}`);
    box.dataset.id = message.id;
    if (message.photo) {
      const img = element("img");
      img.src = message.photo;
      img.alt = "photo";
      box.append(img);
    }
    if (message.location) {
      const { latitude, longitude } = message.location;
      box.append(element("div", "loc-map"));
      box.append(element("span", "loc", `📍 ${latitude.toFixed(5)}, ${longitude.toFixed(5)}`));
    }
    if (message.document) {
      const link = element("a", "doc", `📄 ${message.document.name}`);
      link.href = message.document.url;
      link.download = message.document.name;
      box.append(link);
      if (message.text) box.append(document.createElement("br"));
    }
    if (message.text) box.append(renderText(message.text, message.entities));
    if (message.edited) box.append(element("div", "meta", label("edited", "edited")));
    return box;
  }

  renderInline(message) {
    const box = element("div", "inline");
    for (const row of message.inline) {
      const line = element("div", "row");
      for (const button of row) {
        const node = element("button", "", button.text);
        node.type = "button";
        node.addEventListener("click", () => {
          if (button.callback_data !== undefined) {
            this.press(message.id, button.callback_data);
          } else if (inviteCode(button.url)) {
            this.send(`/start ${inviteCode(button.url)}`);
          } else if (button.url) {
            window.open(button.url, "_blank", "noopener");
          }
        });
        line.append(node);
      }
      box.append(line);
    }
    return box;
  }

  renderKeyboard(rows) {
    const box = this.q(".keyboard");
    box.replaceChildren();
    box.hidden = !rows;
    for (const row of rows || []) {
      const line = element("div", "row");
      for (const button of row) {
        const node = element("button", "", button.text);
        node.type = "button";
        node.addEventListener("click", () => {
          if (button.location) this.toggleLocation(true);
          else if (button.contact) this.act("contact", {});
          else this.send(button.text);
        });
        line.append(node);
      }
      box.append(line);
    }
  }

  renderCommands(commands) {
    const box = this.q(".commands");
    box.replaceChildren();
    for (const command of commands || []) {
      const node = element("button");
      node.type = "button";
      node.append(element("b", "", `/${command.command}`), ` ${command.description}`);
      node.addEventListener("click", () => this.send(`/${command.command}`));
      box.append(node);
    }
  }
}

async function main() {
  demo = await call("/api/demo");
  document.documentElement.lang = demo.language === "zh" ? "zh-Hans" : "en";
  applyLabels(document);
  document.getElementById("school").textContent = demo.school;
  document.getElementById("bot").textContent = `@${demo.bot}`;
  document.title = `${label("title", "Daka demo")} — ${demo.school}`;
  const member = demo.personas[0];
  const manager = demo.personas.find((p) => !p.invite) || demo.personas[1];
  const panes = document.querySelectorAll(".pane");
  window.daka = [new Pane(panes[0], member.id), new Pane(panes[1], manager.id)];
  const remind = document.getElementById("remind");
  remind.addEventListener("click", async () => {
    remind.disabled = true;
    try {
      toast((await post("/api/remind")).text);
    } catch (error) {
      toast(error.message);
    } finally {
      remind.disabled = false;
    }
  });
}

main().catch((error) => toast(`${label("failed", "The demo did not start:")} ${error.message}`));
