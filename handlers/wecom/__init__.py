"""The WeCom (企业微信) adapter: a self-built app's callback (crypto, endpoint, inbound events
and their neutral inputs), its API client (messages, cards, media, menu), the journaled inbox
and its turns of the conversation core, the core's outputs as WeCom messages (out, render,
replies), and the outbox's courier. docs/wecom.md."""
