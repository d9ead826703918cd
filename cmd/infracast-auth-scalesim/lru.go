package main

import (
	"hash/maphash"
	"sync"
)

// lru is the hot set of a replica: the sessions it holds in memory, the
// least recently used evicted past capacity. Sharded, one mutex per shard,
// each shard an intrusive doubly linked list over a map.
type lru struct {
	seed   maphash.Seed
	shards [lruShards]lruShard
}

const lruShards = 16

type lruShard struct {
	mu         sync.Mutex
	capacity   int
	items      map[string]*lruItem
	head, tail *lruItem // head: most recently used
}

type lruItem struct {
	key        string
	val        coldSession
	prev, next *lruItem
}

func newLRU(capacity int) *lru {
	l := &lru{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i] = lruShard{capacity: max(1, capacity/lruShards), items: map[string]*lruItem{}}
	}
	return l
}

func (l *lru) shard(key string) *lruShard {
	return &l.shards[maphash.String(l.seed, key)%lruShards]
}

func (l *lru) get(key string) (coldSession, bool) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.items[key]
	if it == nil {
		return coldSession{}, false
	}
	s.moveToFront(it)
	return it.val, true
}

// add puts or replaces key, evicting the least recently used past capacity.
func (l *lru) add(key string, val coldSession) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.items[key]; it != nil {
		it.val = val
		s.moveToFront(it)
		return
	}
	it := &lruItem{key: key, val: val}
	s.items[key] = it
	s.pushFront(it)
	if len(s.items) > s.capacity {
		old := s.tail
		s.unlink(old)
		delete(s.items, old.key)
	}
}

// drop forgets key (an invalidation).
func (l *lru) drop(key string) {
	s := l.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if it := s.items[key]; it != nil {
		s.unlink(it)
		delete(s.items, key)
	}
}

func (s *lruShard) moveToFront(it *lruItem) {
	if s.head == it {
		return
	}
	s.unlink(it)
	s.pushFront(it)
}

func (s *lruShard) pushFront(it *lruItem) {
	it.prev, it.next = nil, s.head
	if s.head != nil {
		s.head.prev = it
	}
	s.head = it
	if s.tail == nil {
		s.tail = it
	}
}

func (s *lruShard) unlink(it *lruItem) {
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		s.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		s.tail = it.prev
	}
	it.prev, it.next = nil, nil
}
