/// Contiguous storage indexed by small dense integers (descriptors, slice numbers) that doubles
/// when a larger index is needed: the loops' connection tables, idle stamps, send schedule and
/// slice store.
///
/// Every element below ``capacity`` is initialized. Growing moves them (a pointer into the storage
/// is valid until the next ``reserve(_:initial:)``) and initializes the new ones; loops grow only
/// on accept or when a list overflows, never per request. Elements may be noncopyable: they are
/// moved and destroyed one by one.
public struct DoublingStorage<Element: ~Copyable>: ~Copyable {
    /// The first element.
    public private(set) var base: UnsafeMutablePointer<Element>
    /// Elements allocated and initialized.
    public private(set) var capacity: Int

    /// Room for `capacity` elements, element `i` initialized to `initial(i)`.
    public init(capacity: Int, initial: (Int) -> Element) {
        self.capacity = capacity
        base = .allocate(capacity: capacity)
        for index in 0..<capacity { (base + index).initialize(to: initial(index)) }
    }

    deinit {
        base.deinitialize(count: capacity)
        base.deallocate()
    }

    /// Element `index`, which must be below ``capacity``.
    @inlinable @inline(__always)
    public subscript(index: Int) -> UnsafeMutablePointer<Element> {
        base + index
    }

    /// Doubles the capacity until `count` elements fit, initializing each new element `i` to
    /// `initial(i)`. Returns the capacity before (equal to ``capacity`` when nothing grew).
    @discardableResult
    public mutating func reserve(_ count: Int, initial: (Int) -> Element) -> Int {
        let old = capacity
        guard count > old else { return old }
        var grown = Swift.max(old, 1)
        while grown < count { grown *= 2 }
        let moved = UnsafeMutablePointer<Element>.allocate(capacity: grown)
        moved.moveInitialize(from: base, count: old)
        for index in old..<grown { (moved + index).initialize(to: initial(index)) }
        base.deallocate()
        base = moved
        capacity = grown
        return old
    }
}
