import Testing
import Backend

@Suite("DoublingStorage")
struct DoublingStorageTests {
    /// Counts the elements destroyed.
    final class Tally { var destroyed = 0 }

    /// A noncopyable element, as a bundle connection is: it must be moved, never copied, and
    /// destroyed exactly once.
    struct Tracked: ~Copyable {
        let value: Int
        let tally: Tally
        deinit { tally.destroyed += 1 }
    }

    @Test("growing doubles until the count fits, keeps every element and initializes the new ones")
    func growth() {
        var storage = DoublingStorage<Int32>(capacity: 4) { Int32($0) * 10 }
        #expect(storage.capacity == 4)
        storage[2].pointee = 7
        let before = storage.reserve(4) { _ in -1 }
        #expect(before == 4 && storage.capacity == 4, "a count that fits grows nothing")
        let old = storage.reserve(13) { Int32(-$0) }
        #expect(old == 4 && storage.capacity == 16, "4 → 8 → 16")
        #expect((0..<16).map { storage[$0].pointee } == [0, 10, 7, 30] + (4..<16).map { Int32(-$0) })
    }

    @Test("an empty storage grows from nothing")
    func empty() {
        var storage = DoublingStorage<UInt32>(capacity: 0) { _ in 1 }
        #expect(storage.capacity == 0)
        storage.reserve(3) { UInt32($0) }
        #expect(storage.capacity == 4)
        #expect((0..<4).map { storage[$0].pointee } == [0, 1, 2, 3])
    }

    @Test("noncopyable elements are moved on growth and destroyed once, with the storage")
    func noncopyableElements() {
        let tally = Tally()
        do {
            var storage = DoublingStorage<Tracked>(capacity: 2) { Tracked(value: $0, tally: tally) }
            storage.reserve(5) { Tracked(value: 100 + $0, tally: tally) }
            #expect(tally.destroyed == 0, "growing moves elements, it destroys none")
            #expect(storage.capacity == 8)
            #expect((0..<8).map { storage[$0].pointee.value } == [0, 1, 102, 103, 104, 105, 106, 107])
        }
        #expect(tally.destroyed == 8)
    }
}
