"""The WeCom (企业微信) adapter: a self-built app's callback (crypto, endpoint, inbound events
and their neutral inputs) and its API client (messages, cards, media, menu). docs/wecom.md."""
