"""The conversation core: what Daka says to a person and asks them, whatever the channel.

An adapter (`handlers.telegram`, `handlers.wecom`) turns its platform's update into a neutral
input (`io.Command`, `io.Text`, `io.Location`, `io.Photo`, `io.Press`, `io.Document`) from a
`io.Person`, calls the core with a `Turn` (who, their repositories, the clock, their conversation
state, an `io.Out` to answer through) and renders what the core says through its own `Out`.
The core never sees a platform object; its tests use `io.CollectingOut` and `io.MemoryState`."""
